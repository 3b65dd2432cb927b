import { gunzipSync, gzipSync } from 'node:zlib';
import { type DynamoDBDocumentClient, PutCommand, paginateQuery } from '@aws-sdk/lib-dynamodb';
import { expiresAt } from '../kit/ttl';

/**
 * The online ranking's records, in the ranks table; this module is their owner. Each ranker batch writes
 * its counts for a crawl as one item (more past 300 KB), keyed by the batch: `url` = `#batch#<key>#<part>`.
 * - `counts`: gzip'd JSON `[[url, links], …]`, the links the batch counted to each URL;
 * - on part 0, the batch's totals: pages and edges, and `overcountBound`, the links counted from messages
 *   that may have been counted before (redelivered, or repeated by the parser).
 * A URL's online count is the sum over the crawl's batch items.
 * Writing a batch's counts whole, under the batch's own key, costs a few write units per batch instead of
 * one per linked URL, and a retry of the same batch overwrites them instead of adding them again. The sum
 * is taken on read (the managed form of a changelog merged by its reader).
 */
export const RANK_ATTR = {
  counts: 'counts',
  pages: 'pages',
  edges: 'edges',
  overcountBound: 'overcountBound',
  repeats: 'repeats',
  expiresAt: 'expiresAt',
} as const;

const BATCH_PREFIX = '#batch#';
/** Raw JSON per item part: well under DynamoDB's 400 KB item limit even if gzip gains nothing. */
const PART_BYTES = 300 * 1024;

export interface RankSummary {
  /** Pages counted: one per page with in-scope links (two past 500 links), however many a message held. */
  readonly pages: number;
  readonly edges: number;
  /** The most the crawl's online counts can exceed the exact ones, summed over URLs. */
  readonly overcountBound: number;
  /** Pages counted that may have been counted before (a page marked repeat, or a redelivered message's). */
  readonly repeats: number;
}

/** Split count entries into parts of at most PART_BYTES (300 KB) of JSON each; never an empty part but the first. */
export function countParts(entries: Array<[string, number]>): Array<Array<[string, number]>> {
  const out: Array<Array<[string, number]>> = [[]];
  let bytes = 0;
  for (const entry of entries) {
    const size = Buffer.byteLength(entry[0]) + 16;
    if (bytes + size > PART_BYTES && (out.at(-1)?.length ?? 0) > 0) {
      out.push([]);
      bytes = 0;
    }
    out.at(-1)?.push(entry);
    bytes += size;
  }
  return out;
}

/**
 * Write one batch's counts for a crawl. Idempotent per batch: the same batch writes the same items. A
 * failed part leaves the others written; the batch's retry writes them all again (the same key if SQS
 * hands the same messages back, a new one otherwise, which the retry's receive counts put in the bound).
 */
export async function putBatchCounts(
  client: DynamoDBDocumentClient,
  table: string,
  crawlId: string,
  key: string,
  counts: ReadonlyMap<string, number>,
  summary: RankSummary,
  ttlSeconds: number,
): Promise<void> {
  const e = expiresAt(ttlSeconds);
  await Promise.all(
    countParts([...counts]).map((part, i) =>
      client.send(
        new PutCommand({
          TableName: table,
          Item: {
            crawlId,
            url: `${BATCH_PREFIX}${key}#${i}`,
            [RANK_ATTR.counts]: gzipSync(JSON.stringify(part)),
            ...(i === 0 ? summary : {}),
            [RANK_ATTR.expiresAt]: e,
          },
        }),
      ),
    ),
  );
}

export interface OnlineRanking {
  /** Inbound links counted per URL. */
  readonly counts: Map<string, number>;
  readonly summary: RankSummary;
}

/** Every item of one crawl's partition, all pages of the Query. */
async function queryCrawl(
  client: DynamoDBDocumentClient,
  table: string,
  crawlId: string,
): Promise<Array<Record<string, unknown>>> {
  const items: Array<Record<string, unknown>> = [];
  const pages = paginateQuery(
    { client },
    {
      TableName: table,
      KeyConditionExpression: 'crawlId = :c',
      ExpressionAttributeValues: { ':c': crawlId },
    },
  );
  for await (const page of pages) items.push(...(page.Items ?? []));
  return items;
}

/**
 * Read a crawl's online counts: the sum of its batch items. The top N is taken on read, not kept on write:
 * one Query over the crawl's partition.
 */
export async function readOnlineRanking(
  client: DynamoDBDocumentClient,
  table: string,
  crawlId: string,
): Promise<OnlineRanking> {
  const counts = new Map<string, number>();
  const summary = { pages: 0, edges: 0, overcountBound: 0, repeats: 0 };
  for (const item of await queryCrawl(client, table, crawlId)) {
    if (!String(item.url).startsWith(BATCH_PREFIX)) continue;
    for (const k of ['pages', 'edges', 'overcountBound', 'repeats'] as const)
      summary[k] += Number(item[k] ?? 0);
    const part = JSON.parse(gunzipSync(item[RANK_ATTR.counts] as Uint8Array).toString()) as Array<
      [string, number]
    >;
    for (const [url, n] of part) counts.set(url, (counts.get(url) ?? 0) + n);
  }
  return { counts, summary };
}
