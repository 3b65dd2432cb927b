import { randomUUID } from 'node:crypto';
import { QueryCommand } from '@aws-sdk/lib-dynamodb';
import { createCrawlJob, readCrawlBudget } from '../functions/crawl/crawl-record';
import { type CrawlRequestInput, parseCrawlRequest } from '../functions/crawl/crawl-request';
import { newCorrelationId, sendToFrontier } from '../functions/crawl/frontier';
import {
  admissionEntry,
  claimSeed,
  fetchLogEntries,
  fetchLogPartition,
  URL_ATTR,
} from '../functions/crawl/url-record';
import type { Target } from '../tooling/target';

/** The outputs the crawler's commands use, named as lib/stacks/crawler-stack.ts's PipelineStack names them. */
export const CRAWLER_OUTPUTS = [
  'FrontierQueueUrl',
  'FrontierDlqUrl',
  'ParseQueueUrl',
  'ParseDlqUrl',
  'UrlsTableName',
  'CrawlsTableName',
  'BodiesBucketName',
] as const;
/** A target whose stack is checked to be a crawler stack. */
export type CrawlerOutput = (typeof CRAWLER_OUTPUTS)[number];
export type CrawlerTarget = Target<CrawlerOutput>;

export interface SubmitRequest extends CrawlRequestInput {
  /** @default a new UUID */
  readonly crawlId?: string;
}

/**
 * How long the crawl and seed records live: the stage's recordTtl, from the stack's RecordTtlSeconds output
 * (7 days for a stack deployed before that output existed, the dev stage's value).
 */
export function recordTtlSeconds(outputs: Partial<Record<string, string>>): number {
  const ttl = Number(outputs.RecordTtlSeconds);
  return Number.isInteger(ttl) && ttl > 0 ? ttl : 7 * 24 * 3600;
}

/** Create the crawl job, claim the seeds and put them on the frontier. Returns the crawlId. */
export async function submitCrawl(target: CrawlerTarget, request: SubmitRequest): Promise<string> {
  const { seeds, maxPages, maxDepth, allowedHosts } = parseCrawlRequest(request);
  const crawlId = request.crawlId ?? randomUUID();
  const ttlSeconds = recordTtlSeconds(target.outputs);
  const { outputs } = target;
  await createCrawlJob(
    outputs.CrawlsTableName,
    {
      crawlId,
      seeds,
      maxPages,
      maxDepth,
      allowedHosts,
      createdAt: new Date().toISOString(),
    },
    ttlSeconds,
    target.ddb,
  );
  for (const url of seeds) await claimSeed(target.ddb, outputs.UrlsTableName, crawlId, url, ttlSeconds);
  await sendToFrontier(
    outputs.FrontierQueueUrl,
    crawlId,
    newCorrelationId(),
    seeds.map((url) => ({ url, depth: 0 })),
    target.sqs,
  );
  return crawlId;
}

/** How much of a crawl's page budget its parsers have admitted to the frontier; undefined if no such crawl. */
export const crawlBudget = (target: CrawlerTarget, crawlId: string) =>
  readCrawlBudget(target.ddb, target.outputs.CrawlsTableName, crawlId);

/** Every item of one crawl in a table keyed (crawlId, url), or those that have `withAttribute`. */
export async function queryCrawl(
  target: CrawlerTarget,
  table: string,
  crawlId: string,
  withAttribute?: string,
): Promise<Array<Record<string, unknown>>> {
  const items: Array<Record<string, unknown>> = [];
  let start: Record<string, unknown> | undefined;
  do {
    const out = await target.ddb.send(
      new QueryCommand({
        TableName: table,
        KeyConditionExpression: 'crawlId = :c',
        ...(withAttribute
          ? { FilterExpression: 'attribute_exists(#w)', ExpressionAttributeNames: { '#w': withAttribute } }
          : {}),
        ExpressionAttributeValues: { ':c': crawlId },
        ConsistentRead: true,
        ExclusiveStartKey: start,
      }),
    );
    items.push(...(out.Items ?? []));
    start = out.LastEvaluatedKey;
  } while (start);
  return items;
}

/** Pages stored for a crawl: the URL records that hold a page (the crawler's outcome and claim beside it). */
export const listPages = (target: CrawlerTarget, crawlId: string) =>
  queryCrawl(target, target.outputs.UrlsTableName, crawlId, URL_ATTR.fetchedAt);
/**
 * URL records (claims and outcomes) for a crawl. A record with no outcome of its own yet that a crawler's
 * fetch log names (fetched; its page not stored yet, or no parser running) reads as `fetched`.
 */
export async function listUrls(
  target: CrawlerTarget,
  crawlId: string,
): Promise<Array<Record<string, unknown>>> {
  const table = target.outputs.UrlsTableName;
  const [records, logs] = await Promise.all([
    queryCrawl(target, table, crawlId),
    queryCrawl(target, table, fetchLogPartition(crawlId)),
  ]);
  const logged = new Set(logs.flatMap(fetchLogEntries));
  return records.map((record) =>
    record[URL_ATTR.outcome] === undefined && logged.has(admissionEntry(String(record.url)))
      ? { ...record, [URL_ATTR.outcome]: 'fetched' }
      : record,
  );
}
