import { randomUUID } from 'node:crypto';
import { GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import { GetCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { type CrawlRequestInput, parseCrawlRequest } from '../functions/shared/crawl-request';
import { createCrawlJob } from '../functions/shared/crawls';
import { newCorrelationId, sendToFrontier } from '../functions/shared/frontier';
import type { Target } from './target';

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
export async function submitCrawl(target: Target, request: SubmitRequest): Promise<string> {
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
  const claimant = `seed:${crawlId}`;
  for (const url of seeds) {
    await target.ddb.send(
      new UpdateCommand({
        TableName: outputs.UrlsTableName,
        Key: { crawlId, url },
        UpdateExpression: 'SET claimedBy = :c, #d = :d, expiresAt = :e',
        ExpressionAttributeNames: { '#d': 'depth' },
        ExpressionAttributeValues: {
          ':c': claimant,
          ':d': 0,
          ':e': Math.floor(Date.now() / 1000) + ttlSeconds,
        },
      }),
    );
  }
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
export async function crawlBudget(
  target: Target,
  crawlId: string,
): Promise<{ maxPages: number; admitted: number } | undefined> {
  const { Item } = await target.ddb.send(
    new GetCommand({ TableName: target.outputs.CrawlsTableName, Key: { crawlId }, ConsistentRead: true }),
  );
  if (!Item) return undefined;
  const maxPages = Number(Item.maxPages);
  // Each admission takes exactly the places it claims URLs for, so the counter never goes below zero.
  return { maxPages, admitted: maxPages - Number(Item.pagesRemaining) };
}

export interface QueueDepth {
  readonly visible: number;
  readonly inFlight: number;
  readonly delayed: number;
}

export async function queueDepth(target: Target, queueUrl: string): Promise<QueueDepth> {
  const { Attributes: a = {} } = await target.sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: queueUrl,
      AttributeNames: [
        'ApproximateNumberOfMessages',
        'ApproximateNumberOfMessagesNotVisible',
        'ApproximateNumberOfMessagesDelayed',
      ],
    }),
  );
  return {
    visible: Number(a.ApproximateNumberOfMessages ?? 0),
    inFlight: Number(a.ApproximateNumberOfMessagesNotVisible ?? 0),
    delayed: Number(a.ApproximateNumberOfMessagesDelayed ?? 0),
  };
}

export interface PipelineStatus {
  readonly frontier: QueueDepth;
  readonly parse: QueueDepth;
  readonly frontierDlq: number;
  readonly parseDlq: number;
}

export async function pipelineStatus(target: Target): Promise<PipelineStatus> {
  const o = target.outputs;
  const [frontier, parse, fd, pd] = await Promise.all([
    queueDepth(target, o.FrontierQueueUrl),
    queueDepth(target, o.ParseQueueUrl),
    queueDepth(target, o.FrontierDlqUrl),
    queueDepth(target, o.ParseDlqUrl),
  ]);
  return { frontier, parse, frontierDlq: fd.visible + fd.inFlight, parseDlq: pd.visible + pd.inFlight };
}

export const isIdle = (s: PipelineStatus): boolean =>
  s.frontier.visible +
    s.frontier.inFlight +
    s.frontier.delayed +
    s.parse.visible +
    s.parse.inFlight +
    s.parse.delayed ===
  0;

/** Every item of one crawl in a table keyed (crawlId, url). */
export async function queryCrawl(
  target: Target,
  table: string,
  crawlId: string,
): Promise<Array<Record<string, unknown>>> {
  const items: Array<Record<string, unknown>> = [];
  let start: Record<string, unknown> | undefined;
  do {
    const out = await target.ddb.send(
      new QueryCommand({
        TableName: table,
        KeyConditionExpression: 'crawlId = :c',
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

/** Pages stored for a crawl. */
export const listPages = (target: Target, crawlId: string) =>
  queryCrawl(target, target.outputs.PagesTableName, crawlId);
/** URL records (claims and outcomes) for a crawl. */
export const listUrls = (target: Target, crawlId: string) =>
  queryCrawl(target, target.outputs.UrlsTableName, crawlId);

/**
 * Wait until `check` returns a value, polling every `intervalMs`, failing after `timeoutMs` with `what`.
 * The one waiting primitive for tests and tools: conditions, never fixed sleeps.
 */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | false>,
  { timeoutMs = 60_000, intervalMs = 200 } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`,
      );
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Wait until both work queues are empty twice in a row (the ESM may be between receive and delete). */
export async function waitForIdle(target: Target, timeoutMs = 120_000): Promise<PipelineStatus> {
  let streak = 0;
  return waitFor(
    'the pipeline to go idle',
    async () => {
      const status = await pipelineStatus(target);
      streak = isIdle(status) ? streak + 1 : 0;
      return streak >= 3 ? status : undefined;
    },
    { timeoutMs, intervalMs: 300 },
  );
}
