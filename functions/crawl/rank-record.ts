import { type DynamoDBDocumentClient, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { expiresAt } from '../kit/ttl';
import { seedClaimant, URL_ATTR } from './url-record';

/**
 * The online ranking's records, in the ranks table; this module is their owner.
 * - One item per (crawlId, url) linked to: `inlinks`, the links counted so far from the crawl's pages.
 * - One summary item per crawl, at url = RANK_SUMMARY_URL (a URL is absolute, so it cannot collide):
 *   pages and edges logged, and `overcountBound`, the links counted from messages that may have been
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
 * Every item of one crawl's partition, paged, with only the attributes asked for.
 * Hand-written: the document client has no paginating helper that takes a projection and names.
 */
async function queryCrawl(
  client: DynamoDBDocumentClient,
  table: string,
  crawlId: string,
  projection?: { expression: string; names: Record<string, string> },
): Promise<Array<Record<string, unknown>>> {
  const items: Array<Record<string, unknown>> = [];
  let start: Record<string, unknown> | undefined;
  do {
    const out = await client.send(
      new QueryCommand({
        TableName: table,
        KeyConditionExpression: 'crawlId = :c',
        ExpressionAttributeValues: { ':c': crawlId },
        ExclusiveStartKey: start,
        ...(projection
          ? { ProjectionExpression: projection.expression, ExpressionAttributeNames: projection.names }
          : {}),
      }),
    );
    items.push(...(out.Items ?? []));
    start = out.LastEvaluatedKey;
  } while (start);
  return items;
}

/**
 * Read a crawl's online counts. A URL's count is its ranks item's `inlinks` plus one for the page that
 * claimed it (its URL record's `claimedBy`, unless a seed), because the ranker leaves a link its page
 * claimed to that claim: the claim is written once whatever is retried, so it counts for free and exactly.
 * The top N is taken on read, not kept on write: two Queries over the crawl's partitions.
 */
export async function readOnlineRanking(
  client: DynamoDBDocumentClient,
  tables: { ranks: string; urls: string },
  crawlId: string,
): Promise<OnlineRanking> {
  const counts = new Map<string, number>();
  const claims = await queryCrawl(client, tables.urls, crawlId, {
    expression: '#u, #c',
    names: { '#u': 'url', '#c': URL_ATTR.claimedBy },
  });
  for (const item of claims) {
    const owner = item[URL_ATTR.claimedBy];
    if (typeof owner === 'string' && owner !== '' && owner !== seedClaimant(crawlId))
      counts.set(item.url as string, 1);
  }
  let summary: RankSummary = { pages: 0, edges: 0, overcountBound: 0, repeats: 0 };
  for (const item of await queryCrawl(client, tables.ranks, crawlId)) {
    if (item.url === RANK_SUMMARY_URL)
      summary = {
        pages: Number(item[RANK_ATTR.pages] ?? 0),
        edges: Number(item[RANK_ATTR.edges] ?? 0),
        overcountBound: Number(item[RANK_ATTR.overcountBound] ?? 0),
        repeats: Number(item[RANK_ATTR.repeats] ?? 0),
      };
    else {
      const url = item.url as string;
      counts.set(url, (counts.get(url) ?? 0) + Number(item[RANK_ATTR.inlinks] ?? 0));
    }
  }
  return { counts, summary };
}
