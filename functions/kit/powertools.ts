import { Logger, LogLevelThreshold } from '@aws-lambda-powertools/logger';
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

type LogMethod = 'debug' | 'info' | 'warn' | 'error';
type LogInput = Parameters<Logger['info']>[0];
type LogExtra = Parameters<Logger['info']> extends [unknown, ...infer Rest] ? Rest : never;
/** What a record's code logs through: the shared logger's levels, each line carrying the record's keys. */
export type RecordLogger = Pick<Logger, LogMethod>;

/**
 * A logger carrying the record's messageId and the keys given (a pipeline's ids: a crawlId, an eventId) on
 * every line. A child per record, rather than keys appended to the shared logger, keeps records processed
 * concurrently from mixing their keys. The child is built on the record's first line at an enabled level:
 * most records write none, and building one per record took 4% of the crawler's CPU.
 */
export function recordLogger(record: SQSRecord, keys: Record<string, unknown> = {}): RecordLogger {
  let child: Logger | undefined;
  const at =
    (method: LogMethod, threshold: number) =>
    (input: LogInput, ...extra: LogExtra): void => {
      if (logger.level > threshold) return;
      child ??= logger.createChild({ persistentKeys: { messageId: record.messageId, ...keys } });
      child[method](input, ...extra);
    };
  return {
    debug: at('debug', LogLevelThreshold.DEBUG),
    info: at('info', LogLevelThreshold.INFO),
    warn: at('warn', LogLevelThreshold.WARN),
    error: at('error', LogLevelThreshold.ERROR),
  };
}
