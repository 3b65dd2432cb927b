import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import type { ParseMessage } from '../crawl/schemas';
import { claimStatement } from '../kit/claim';
import { ddb } from '../kit/clients';
import { StatementBatcher } from '../kit/statement-batcher';
import type { ExtractedPage } from './extract';

export type PageRecord = Record<string, unknown> & { crawlId: string; url: string; fetchedAt: number };

/** DynamoDB bills a write per started KB of item: the page record is sized to cost one. */
export const WRITE_UNIT_BYTES = 1024;

/**
 * DynamoDB's item size for the flat string/number items stored here: attribute name bytes plus value
 * bytes (numbers: about one byte per two digits, plus one). Hand-written because the SDK has no sizer.
 */
export function itemBytes(item: Record<string, unknown>): number {
  let total = 0;
  for (const [name, value] of Object.entries(item)) {
    if (value === undefined) continue;
    total += Buffer.byteLength(name);
    if (typeof value === 'number')
      total += Math.ceil(String(Math.abs(value)).replace('.', '').length / 2) + 1;
    else total += Buffer.byteLength(String(value));
  }
  return total;
}

/** The longest prefix of `text` that fits in `maxBytes` of UTF-8, cut between code points. */
export function truncateUtf8(text: string, maxBytes: number): string {
  if (Buffer.byteLength(text) <= maxBytes) return text;
  let bytes = 0;
  let end = 0;
  for (const ch of text) {
    const b = Buffer.byteLength(ch);
    if (bytes + b > maxBytes) break;
    bytes += b;
    end += ch.length;
  }
  return text.slice(0, end);
}

/**
 * The stored form of a parsed page. Pure, so what gets stored is tested without DynamoDB. The text
 * excerpt takes whatever room the other attributes leave under one write unit, so every page costs
 * one WRU rather than two; the excerpt is shorter for pages with long URLs or titles.
 */
export function pageRecord(message: ParseMessage, page: ExtractedPage, charset: string): PageRecord {
  const record = pageFields(message, page, charset);
  const room = WRITE_UNIT_BYTES - itemBytes(record) - Buffer.byteLength('text');
  return { ...record, text: truncateUtf8(page.text, Math.max(0, room)) };
}

function pageFields(message: ParseMessage, page: ExtractedPage, charset: string): PageRecord {
  const p = message.payload;
  return {
    crawlId: message.crawlId,
    url: p.url,
    finalUrl: p.finalUrl,
    depth: p.depth,
    httpStatus: p.httpStatus,
    fetchedAt: p.fetchedAt,
    storedAt: new Date().toISOString(),
    charset,
    title: page.title,
    description: page.description,
    canonical: page.canonical,
    linkCount: page.links.length,
    correlationId: message.correlationId,
    // A parse stopped by a limit is still stored, with the limit that stopped it.
    ...(page.cut ? { parseCut: page.cut } : {}),
  };
}

/** The first writes of pages parsed side by side: one BatchExecuteStatement instead of a PutItem each. */
const firstWrites = new StatementBatcher(ddb);

/**
 * Store a page unless a record from the same or a newer fetch is already there. The condition makes a
 * redelivery, or an older fetch arriving late, a no-op: the managed form of a Redis idempotency key.
 * 'replaced' is a newer fetch of a page stored before (the old item comes back with the write, at no cost),
 * so the page's links may have been sent before.
 *
 * A page is first written as a PartiQL INSERT, batched with the pages parsed beside it, which succeeds only
 * where no record exists: the common case, a page stored for the first time. Any other answer (a record
 * already there, or a statement DynamoDB refused) takes the conditional PutItem below, which tells a
 * newer fetch from a duplicate.
 */
export async function storePage(
  table: string,
  record: PageRecord,
): Promise<'stored' | 'replaced' | 'duplicate'> {
  try {
    await firstWrites.run(
      `${record.crawlId} ${record.url}`,
      claimStatement({ table, item: { ...record }, keyAttribute: 'url' }),
    );
    return 'stored';
  } catch {
    return putPage(table, record);
  }
}

async function putPage(table: string, record: PageRecord): Promise<'stored' | 'replaced' | 'duplicate'> {
  try {
    const out = await ddb.send(
      new PutCommand({
        TableName: table,
        Item: record,
        ConditionExpression: 'attribute_not_exists(#url) OR fetchedAt < :fetchedAt',
        ExpressionAttributeNames: { '#url': 'url' },
        ExpressionAttributeValues: { ':fetchedAt': record.fetchedAt },
        ReturnValues: 'ALL_OLD',
      }),
    );
    return out.Attributes ? 'replaced' : 'stored';
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException) return 'duplicate';
    throw error;
  }
}
