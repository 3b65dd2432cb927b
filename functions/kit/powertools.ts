import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import type { Context, SQSRecord } from 'aws-lambda';

/**
 * One logger and one metrics instance per function. Service name, log level and metrics namespace come
 * from the POWERTOOLS_* variables QueueConsumer sets from its props, so no pipeline name is written here.
 */
export const logger = new Logger();
export const metrics = new Metrics({
  // Its own warnings ("No application metrics to publish", …) as JSON log records, not bare console lines,
  // so a function's log stays one JSON object per line.
  logger,
});

/** Metric names the kit itself emits. A pipeline keeps its own next to its handlers. */
export const KIT_METRIC = {
  invalidMessages: 'invalidMessages',
} as const;

/**
 * Call first in a handler: Lambda context (request id, cold start, function name) on every log line, and
 * the ColdStart metric on a container's first invocation.
 */
export function startInvocation(context: Context): void {
  logger.addContext(context);
  metrics.captureColdStartMetric();
}

/**
 * A child logger carrying the record's messageId and the keys given (a pipeline's ids: a crawlId, an
 * eventId) on every line. A child per record, rather than keys appended to the shared logger, keeps
 * records processed concurrently from mixing their keys.
 */
export function recordLogger(record: SQSRecord, keys: Record<string, unknown> = {}): Logger {
  return logger.createChild({ persistentKeys: { messageId: record.messageId, ...keys } });
}
