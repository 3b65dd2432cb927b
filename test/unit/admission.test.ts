import { IdempotencyRecordStatus } from '@aws-lambda-powertools/idempotency';
import { describe, expect, it } from 'vitest';
import {
  admissionEntry,
  admissionItem,
  admissionsOf,
  fetchedFields,
  IDEM_COMPLETED,
  linkClaim,
  pageStoreStatement,
  pageStoreUpdate,
} from '../../functions/crawl/url-record';

describe('a page’s admission list', () => {
  it('gives each URL a short, stable entry that tells URLs apart', () => {
    const a = admissionEntry('http://a.example/x');
    expect(a).toMatch(/^[A-Za-z0-9_-]{16}$/);
    expect(admissionEntry('http://a.example/x')).toBe(a);
    expect(admissionEntry('http://a.example/y')).not.toBe(a);
    // Its size does not grow with the URL's.
    expect(admissionEntry(`http://a.example/${'p'.repeat(1000)}`)).toHaveLength(16);
  });

  it('appends only to a list that has the length the caller knows, and creates it only where there is none', () => {
    const first = admissionItem('urls', 'c1', 'http://a.example/', ['e1', 'e2'], 0, 3600).Update;
    expect(first).toMatchObject({
      TableName: 'urls',
      // Its own item, outside the crawl's partition: the page's URL record stays within one write unit.
      Key: { crawlId: '#admitted#c1', url: 'http://a.example/' },
      UpdateExpression: 'SET #a = list_append(if_not_exists(#a, :none), :add), #x = if_not_exists(#x, :e)',
      ConditionExpression: 'attribute_not_exists(#a)',
      ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
      ExpressionAttributeNames: { '#a': 'admitted', '#x': 'expiresAt' },
    });
    expect(first.ExpressionAttributeValues).toMatchObject({ ':none': [], ':add': ['e1', 'e2'] });
    expect(first.ExpressionAttributeValues).not.toHaveProperty(':n');

    const next = admissionItem('urls', 'c1', 'http://a.example/', ['e3'], 2, 3600).Update;
    expect(next.ConditionExpression).toBe('size(#a) = :n');
    expect(next.ExpressionAttributeValues).toMatchObject({ ':n': 2, ':add': ['e3'] });
  });

  it('reads the list back from a cancelled payment, in wire or plain form', () => {
    expect(admissionsOf({ admitted: { L: [{ S: 'e1' }, { S: 'e2' }] } })).toEqual(['e1', 'e2']);
    expect(admissionsOf({ admitted: ['e1'] })).toEqual(['e1']);
    expect(admissionsOf({ url: { S: 'x' } })).toEqual([]);
    expect(admissionsOf(undefined)).toEqual([]);
  });

  it('claims a link for the page that found it, one level deeper, with an expiry', () => {
    const claim = linkClaim('urls', 'c1', 'http://a.example/x', 'http://a.example/', 2, 3600);
    expect(claim.table).toBe('urls');
    expect(claim.keyAttribute).toBe('url');
    expect(claim.item).toMatchObject({
      crawlId: 'c1',
      url: 'http://a.example/x',
      claimedBy: 'http://a.example/',
      depth: 2,
    });
    expect(Number(claim.item.expiresAt)).toBeGreaterThan(Date.now() / 1000 + 3500);
  });
});

describe('a page stored on its URL record', () => {
  it('writes the completion Powertools reads, with the status Powertools names', () => {
    expect(IDEM_COMPLETED).toBe(IdempotencyRecordStatus.COMPLETED);
    const fields = fetchedFields({ depth: 1, httpStatus: 200, finalUrl: 'http://a.example/' }, 3600);
    expect(fields).toMatchObject({ outcome: 'fetched', idemStatus: 'COMPLETED', httpStatus: 200, depth: 1 });
    expect(Number(fields.idemExpiry)).toBeGreaterThan(Date.now() / 1000 + 3500);
  });

  it('first stores a page only on a record that holds none, and drops the expiry so the page is kept', () => {
    const st = pageStoreStatement(
      'urls',
      { crawlId: 'c1', url: 'http://a.example/' },
      { fetchedAt: 5, title: 'T', description: undefined },
    );
    expect(st.Statement).toBe(
      'UPDATE "urls" SET "fetchedAt" = ? SET "title" = ? REMOVE "expiresAt" REMOVE "idemLeaseMs" REMOVE "idemOwner" WHERE "crawlId" = ? AND "url" = ? AND attribute_not_exists("fetchedAt")',
    );
    expect(st.Parameters).toEqual([5, 'T', 'c1', 'http://a.example/']);
  });

  it('replaces only an older page, removing what the newer one lacks, and says what was there', () => {
    const update = pageStoreUpdate(
      'urls',
      { crawlId: 'c1', url: 'http://a.example/' },
      { fetchedAt: 9, title: 'T', parseCut: undefined },
    );
    expect(update.ConditionExpression).toBe('attribute_not_exists(#f) OR #f < :f');
    expect(update.ExpressionAttributeValues[':f']).toBe(9);
    expect(update.UpdateExpression).toBe(
      'SET #p0 = :p0, #p1 = :p1 REMOVE #expiresAt, #idemLeaseMs, #idemOwner, #p2',
    );
    expect(update.ExpressionAttributeNames).toMatchObject({
      '#p0': 'fetchedAt',
      '#p1': 'title',
      '#p2': 'parseCut',
    });
    expect(update.ReturnValues).toBe('UPDATED_OLD');
  });
});
