import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { type DynamoDBDocumentClient, GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { ddb } from './clients';

/** A crawl job: its limits and its page budget (the managed form of a Redis DECR stock counter). */
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

/** Create a crawl job with a full page budget. Fails if the crawlId exists. */
export async function createCrawlJob(
  table: string,
  job: CrawlJob,
  ttlSeconds: number,
  client: DynamoDBDocumentClient = ddb,
): Promise<void> {
  await client.send(
    new PutCommand({
      TableName: table,
      Item: {
        ...job,
        pagesRemaining: job.maxPages,
        expiresAt: Math.floor(Date.now() / 1000) + ttlSeconds,
      },
      ConditionExpression: 'attribute_not_exists(crawlId)',
    }),
  );
}

/**
 * Take one page from the crawl's budget with a conditional decrement. Concurrent consumers can never
 * take more than maxPages in total. Returns false when the budget is spent.
 */
export async function takePageBudget(table: string, crawlId: string): Promise<boolean> {
  try {
    await ddb.send(
      new UpdateCommand({
        TableName: table,
        Key: { crawlId },
        UpdateExpression: 'SET pagesRemaining = pagesRemaining - :one',
        ConditionExpression: 'pagesRemaining >= :one',
        ExpressionAttributeValues: { ':one': 1 },
      }),
    );
    return true;
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException) return false;
    throw error;
  }
}
