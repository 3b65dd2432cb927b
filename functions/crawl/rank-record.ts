import { type DynamoDBDocumentClient, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { expiresAt } from '../kit/ttl';

/**
 * The online ranking's records, in the ranks table; this module is their owner.
 * - One item per (crawlId, url) linked to: `inlinks`, the links counted so far from the crawl's pages.
 * - One summary item per crawl, at url = RANK_SUMMARY_URL (a URL is absolute, so it cannot collide):
 *   pages and edges counted, and `overcountBound`, the links counted from messages that may have been
 *   counted before (redelivered, repeated, or written by a retried request). Every online count is at least
 *   the exact one, and the counts of a crawl exceed the exact ones by at most `overcountBound` in total.
 */
export const RANK_ATTR = {
  inlinks: 'inlinks',
  pages: 'pages',
  edges: 'edges',
  overcountBound: 'overcountBound',
  repeats: 'repeats',
  expiresAt: 'expiresAt',
} as const;

export const RANK_SUMMARY_URL = '#summary';

export interface RankSummary {
  /** Page-links messages counted: one per page with in-scope links (two past 500 links). */
  readonly pages: number;
  readonly edges: number;
  /** The most the crawl's online counts can exceed the exact ones, summed over URLs. */
  readonly overcountBound: number;
  /** Messages counted that may have been counted before. */
  readonly repeats: number;
}

/**
 * Add `n` inbound links to a URL's count. Returns whether the SDK sent the request more than once: an
 * attempt whose response was lost may have been applied too, so the caller adds `n` to the bound.
 */
export async function addInlinks(
  client: DynamoDBDocumentClient,
  table: string,
  crawlId: string,
  url: string,
  n: number,
  ttlSeconds: number,
): Promise<{ resent: boolean }> {
  const out = await client.send(
    new UpdateCommand({
      TableName: table,
      Key: { crawlId, url },
      UpdateExpression: `ADD ${RANK_ATTR.inlinks} :n SET ${RANK_ATTR.expiresAt} = if_not_exists(${RANK_ATTR.expiresAt}, :e)`,
      ExpressionAttributeValues: { ':n': n, ':e': expiresAt(ttlSeconds) },
    }),
  );
  return { resent: (out.$metadata.attempts ?? 1) > 1 };
}

/** Add a batch's totals to the crawl's summary item. A resent request only inflates them, bound included. */
export async function addRankSummary(
  client: DynamoDBDocumentClient,
  table: string,
  crawlId: string,
  add: RankSummary,
  ttlSeconds: number,
): Promise<void> {
  await client.send(
    new UpdateCommand({
      TableName: table,
      Key: { crawlId, url: RANK_SUMMARY_URL },
      UpdateExpression: `ADD ${RANK_ATTR.pages} :p, ${RANK_ATTR.edges} :d, ${RANK_ATTR.overcountBound} :b, ${RANK_ATTR.repeats} :r SET ${RANK_ATTR.expiresAt} = if_not_exists(${RANK_ATTR.expiresAt}, :e)`,
      ExpressionAttributeValues: {
        ':p': add.pages,
        ':d': add.edges,
        ':b': add.overcountBound,
        ':r': add.repeats,
        ':e': expiresAt(ttlSeconds),
      },
    }),
  );
}

export interface OnlineRanking {
  /** Inbound links counted per URL. */
  readonly counts: Map<string, number>;
  readonly summary: RankSummary;
}

/**
 * Read a crawl's online counts: one Query over the crawl's partition, paged. The top N is taken on read,
 * not kept on write, so the ranker pays one write per linked URL per batch and nothing more.
 */
export async function readOnlineRanking(
  client: DynamoDBDocumentClient,
  table: string,
  crawlId: string,
): Promise<OnlineRanking> {
  const counts = new Map<string, number>();
  let summary: RankSummary = { pages: 0, edges: 0, overcountBound: 0, repeats: 0 };
  let start: Record<string, unknown> | undefined;
  do {
    const out = await client.send(
      new QueryCommand({
        TableName: table,
        KeyConditionExpression: 'crawlId = :c',
        ExpressionAttributeValues: { ':c': crawlId },
        ExclusiveStartKey: start,
      }),
    );
    for (const item of out.Items ?? []) {
      if (item.url === RANK_SUMMARY_URL)
        summary = {
          pages: Number(item[RANK_ATTR.pages] ?? 0),
          edges: Number(item[RANK_ATTR.edges] ?? 0),
          overcountBound: Number(item[RANK_ATTR.overcountBound] ?? 0),
          repeats: Number(item[RANK_ATTR.repeats] ?? 0),
        };
      else counts.set(item.url as string, Number(item[RANK_ATTR.inlinks] ?? 0));
    }
    start = out.LastEvaluatedKey;
  } while (start);
  return { counts, summary };
}
