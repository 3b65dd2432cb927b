import {
  BatchProcessor,
  EventType,
  processPartialResponse,
  SqsFifoPartialProcessorAsync,
} from '@aws-lambda-powertools/batch';
import type { Context, SQSBatchItemFailure, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { forwardToDlq } from './dlq';
import { looseIds } from './envelope';
import { InvalidMessageError } from './errors';
import { KIT_METRIC, logger, metrics } from './powertools';

export type RecordHandler = (record: SQSRecord) => Promise<unknown>;

/** How many times SQS has handed this record out, this receive included. */
export const receiveCount = (record: SQSRecord): number =>
  Number(record.attributes.ApproximateReceiveCount ?? '1');

/**
 * Wrap a record handler so a message that fails validation goes to the DLQ at once with its reason and
 * counts as processed; every other error is logged and propagates, so only that record is reported for retry.
 */
export function poisonToDlq(dlqUrl: string, handler: RecordHandler): RecordHandler {
  return async (record) => {
    try {
      return await handler(record);
    } catch (error) {
      if (!(error instanceof InvalidMessageError)) {
        logger.error('record failed; it returns to the queue for retry', {
          ...looseIds(record.body),
          messageId: record.messageId,
          receiveCount: record.attributes.ApproximateReceiveCount,
          error: error as Error,
        });
        throw error;
      }
      logger.error('invalid message forwarded to DLQ without retry', {
        ...looseIds(record.body),
        messageId: record.messageId,
        reason: error.message,
      });
      metrics.addMetric(KIT_METRIC.invalidMessages, 'Count', 1);
      await forwardToDlq(dlqUrl, record, error.message);
      return 'forwarded-to-dlq';
    }
  };
}

/** Standard queue: records run concurrently; failures are reported one by one (partial batch response). */
export async function processStandardBatch(
  event: SQSEvent,
  context: Context,
  handler: RecordHandler,
): Promise<SQSBatchResponse> {
  return processPartialResponse(event, handler, new BatchProcessor(EventType.SQS), {
    context,
    processInParallel: true,
    throwOnFullBatchFailure: false,
  });
}

/**
 * FIFO queue: message groups run concurrently, and each group's records run in order. After a failure the
 * rest of that group is reported too (skipGroupOnError), so its order holds; other groups go on.
 * `aroundGroup` wraps each group's run (the crawler uses it to batch its sends across groups).
 */
export async function processFifoBatchByGroup(
  event: SQSEvent,
  context: Context,
  handler: RecordHandler,
  aroundGroup: <T>(run: () => Promise<T>) => Promise<T> = (run) => run(),
): Promise<SQSBatchResponse> {
  const groups = new Map<string, SQSRecord[]>();
  for (const record of event.Records) {
    const id = record.attributes.MessageGroupId ?? '';
    const list = groups.get(id) ?? [];
    list.push(record);
    groups.set(id, list);
  }
  const results = await Promise.all(
    [...groups.values()].map((records) =>
      aroundGroup(() =>
        processPartialResponse({ Records: records }, handler, new SqsFifoPartialProcessorAsync(), {
          context,
          skipGroupOnError: true,
          throwOnFullBatchFailure: false,
        }),
      ),
    ),
  );
  const batchItemFailures: SQSBatchItemFailure[] = results.flatMap((r) => r.batchItemFailures);
  return { batchItemFailures };
}
