import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import type { SQSRecord } from 'aws-lambda';

/** One logger and one metrics instance per function; service name and level come from POWERTOOLS_* variables. */
export const logger = new Logger();
export const metrics = new Metrics({
  namespace: process.env.POWERTOOLS_METRICS_NAMESPACE ?? 'CrawlerPipeline',
  // Its own warnings ("No application metrics to publish", …) as JSON log records, not bare console lines,
  // so a function's log stays one JSON object per line.
  logger,
});

/** Metric names shared by the functions and the dashboard. */
export const METRIC = {
  pagesFetched: 'pagesFetched',
  pagesStored: 'pagesStored',
  duplicatesSuppressed: 'duplicatesSuppressed',
  blocked: 'blocked',
  linksEnqueued: 'linksEnqueued',
  linksOverBudget: 'linksOverBudget',
  invalidMessages: 'invalidMessages',
  outcome: 'outcome',
} as const;

/**
 * A child logger carrying crawlId, correlationId and messageId on every line. A child per record, rather
 * than keys appended to the shared logger, keeps records processed concurrently from mixing their keys.
 */
export function recordLogger(record: SQSRecord, ids: { crawlId?: string; correlationId?: string }): Logger {
  return logger.createChild({
    persistentKeys: { messageId: record.messageId, crawlId: ids.crawlId, correlationId: ids.correlationId },
  });
}
