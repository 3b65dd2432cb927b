import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { type DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { ddb } from '../kit/clients';
import { type CounterRef, leftOf, takeItem } from '../kit/counter';
import { expiresAt } from '../kit/ttl';

/**
 * The crawl record, one item per crawlId in the crawls table; this module is its owner. It holds the
 * crawl's limits, its page budget (`pagesRemaining`, a kit counter) and `expiresAt`, the table's TTL
 * attribute, from the stage's recordTtl (the stack's RecordTtlSeconds output, for the CLI that writes it).
 *
 * A crawl job: its limits and its page budget. maxPages bounds the URLs admitted to the frontier, so it
 * bounds fetches: a URL that fails (404, robots) still used its place. Links found once the budget is
 * spent are counted, not enqueued.
 */
export interface CrawlJob {
  readonly crawlId: string;
  readonly seeds: readonly string[];
  readonly maxPages: number;
  readonly maxDepth: number;
  /** host[:port] values in scope. */
  readonly allowedHosts: readonly string[];
  readonly createdAt: string;
}

/** Limits never change after creation, so they are cached for the life of the container. */
const jobCache = new Map<string, CrawlJob>();

export async function getCrawlJob(table: string, crawlId: string): Promise<CrawlJob | undefined> {
  const cached = jobCache.get(crawlId);
  if (cached) return cached;
  const { Item } = await ddb.send(
    new GetCommand({ TableName: table, Key: { crawlId }, ConsistentRead: true }),
  );
  if (!Item) return undefined;
  const job: CrawlJob = {
    crawlId,
    seeds: Item.seeds as string[],
    maxPages: Item.maxPages as number,
    maxDepth: Item.maxDepth as number,
    allowedHosts: Item.allowedHosts as string[],
    createdAt: Item.createdAt as string,
  };
  if (jobCache.size > 1000) jobCache.clear();
  jobCache.set(crawlId, job);
  return job;
}

/**
 * Create a crawl job whose seeds are already admitted: the budget left is maxPages minus the seeds.
 * The request was checked by parseCrawlRequest (crawl-request.ts). Fails if the crawlId exists.
 */
export async function createCrawlJob(
  table: string,
  job: CrawlJob,
  ttlSeconds: number,
  client: DynamoDBDocumentClient = ddb,
): Promise<void> {
  try {
    await client.send(
      new PutCommand({
        TableName: table,
        Item: {
          ...job,
          [PAGES_REMAINING]: job.maxPages - job.seeds.length,
          expiresAt: expiresAt(ttlSeconds),
        },
        ConditionExpression: 'attribute_not_exists(crawlId)',
      }),
    );
  } catch (error) {
    if (!(error instanceof ConditionalCheckFailedException)) throw error;
    throw new Error(
      `crawl ${job.crawlId} already exists; its budget and seeds are kept (submit under another crawl id)`,
    );
  }
}

/** The crawl record's attribute holding its page budget: the places left. */
const PAGES_REMAINING = 'pagesRemaining';

/** The crawl's page budget as a kit counter. */
export const budgetCounter = (table: string, crawlId: string): CounterRef => ({
  table,
  key: { crawlId },
  attribute: PAGES_REMAINING,
});

/**
 * The budget half of an admission: take `count` places from the crawl's page budget, only if that many are
 * left (the kit's take-n counter). It is one item of the parser's admission transaction, next to the
 * claims of the URLs it admits, so a place is spent exactly when a URL is claimed and a retried admission
 * can never spend twice. On a failed condition the item read back says how many places are left
 * (`placesLeftOf`).
 */
export const budgetDecrement = (table: string, crawlId: string, count: number) =>
  takeItem(budgetCounter(table, crawlId), count);

/** The places left according to the crawl item read back from a failed admission. */
export const placesLeftOf = (item: Record<string, unknown> | undefined): number =>
  leftOf({ attribute: PAGES_REMAINING }, item);

/** How much of a crawl's page budget its parsers have admitted; undefined if there is no such crawl. */
export async function readCrawlBudget(
  client: DynamoDBDocumentClient,
  table: string,
  crawlId: string,
): Promise<{ maxPages: number; admitted: number } | undefined> {
  const { Item } = await client.send(
    new GetCommand({ TableName: table, Key: { crawlId }, ConsistentRead: true }),
  );
  if (!Item) return undefined;
  const maxPages = Number(Item.maxPages);
  // Each admission takes exactly the places it claims URLs for, so the counter never goes below zero.
  return { maxPages, admitted: maxPages - Number(Item[PAGES_REMAINING]) };
}
