import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { ParseMessage } from '../crawl/schemas';
import {
  fetchedFields,
  pageStoreStatement,
  pageStoreUpdate,
  seedClaimant,
  URL_ATTR,
} from '../crawl/url-record';
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
 * one WRU rather than two; the excerpt is shorter for pages with long URLs or titles. `besides` are the
 * other attributes the page's item holds (its URL record's claim and outcome): those the page does not
 * set itself are counted too.
 */
export function pageRecord(
  message: ParseMessage,
  page: ExtractedPage,
  charset: string,
  besides: Record<string, unknown> = {},
): PageRecord {
  const record = pageFields(message, page, charset);
  const others = Object.fromEntries(Object.entries(besides).filter(([name]) => !(name in record)));
  const room = WRITE_UNIT_BYTES - itemBytes(record) - itemBytes(others) - Buffer.byteLength('text');
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
    // A parse stopped by a limit is still stored, with the limit that stopped it (absent otherwise, so a
    // newer fetch's store removes an older one's).
    parseCut: page.cut,
  };
}

/**
 * Everything the write of a parsed page sets on its URL record: the page, and beside it the crawler's
 * outcome `fetched` with its completed idempotency record (the page's own attributes win where both name
 * one, so `finalUrl` is kept whole). The page is sized to one write unit of the whole record, the claim
 * already on it included (`claimedBy` is the page that discovered the URL, or the crawl for a seed).
 */
export function pageWrite(
  message: ParseMessage,
  page: ExtractedPage,
  charset: string,
  bodyBytes: number,
  ttlSeconds: number,
): PageRecord {
  const { depth, httpStatus, finalUrl, discoveredFrom } = message.payload;
  const fetched = fetchedFields({ depth, httpStatus, finalUrl, bytes: bodyBytes }, ttlSeconds);
  const claim = {
    [URL_ATTR.claimedBy]: discoveredFrom ?? seedClaimant(message.crawlId),
    [URL_ATTR.discoveredAt]: new Date().toISOString(),
  };
  return { ...fetched, ...pageRecord(message, page, charset, { ...fetched, ...claim }) };
}

/** The first stores of pages parsed side by side: one BatchExecuteStatement instead of a write each. */
const firstWrites = new StatementBatcher(ddb);

/**
 * Store a page on its URL record unless a page from the same or a newer fetch is already there. The
 * condition makes a redelivery, or an older fetch arriving late, a no-op: the managed form of a Redis
 * idempotency key. 'replaced' is a newer fetch of a page stored before (its older `fetchedAt` comes back
 * with the write, at no cost), so the page's links may have been sent before.
 *
 * A page is first written as a PartiQL UPDATE, batched with the pages parsed beside it, which succeeds
 * only on a record that holds no page: the common case, a claimed URL fetched once. Any other answer (a
 * page already there, no record at all, or a statement DynamoDB refused) takes the conditional UpdateItem
 * below, which tells a newer fetch from a duplicate.
 */
export async function storePage(
  table: string,
  record: PageRecord,
): Promise<'stored' | 'replaced' | 'duplicate'> {
  const { crawlId, url, ...fields } = record;
  const key = { crawlId, url };
  try {
    await firstWrites.run(`${crawlId} ${url}`, pageStoreStatement(table, key, fields));
    return 'stored';
  } catch {
    return updatePage(table, key, fields);
  }
}

async function updatePage(
  table: string,
  key: { crawlId: string; url: string },
  fields: Record<string, unknown>,
): Promise<'stored' | 'replaced' | 'duplicate'> {
  try {
    const out = await ddb.send(new UpdateCommand(pageStoreUpdate(table, key, fields)));
    return out.Attributes?.[URL_ATTR.fetchedAt] !== undefined ? 'replaced' : 'stored';
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException) return 'duplicate';
    throw error;
  }
}
