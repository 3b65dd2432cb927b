import { describe, expect, it } from 'vitest';
import { admissionEntry, admissionItem, admissionsOf, linkClaim } from '../../functions/crawl/url-record';

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
      Key: { crawlId: 'c1', url: 'http://a.example/' },
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
