import {
  BatchProcessor,
  EventType,
  processPartialResponse,
  SqsFifoPartialProcessorAsync,
} from '@aws-lambda-powertools/batch';
import { ChangeMessageVisibilityBatchCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { Context, SQSBatchItemFailure, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { forwardToDlq } from './dlq';
import { KIT_ENV } from './env-names';
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
export function poisonToDlq(
  dlqUrl: string,
  handler: RecordHandler,
  /** Told of each record forwarded, once it is on the DLQ (to record where its work stopped); logged if it fails. */
  onForwarded?: (record: SQSRecord, error: InvalidMessageError) => Promise<void>,
): RecordHandler {
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
      // The message is on the DLQ either way: a failure here is logged, so the record is not forwarded twice.
      await onForwarded?.(record, error).catch((failure: unknown) =>
        logger.error('could not record the outcome of a record forwarded to the DLQ', {
          ...looseIds(record.body),
          messageId: record.messageId,
          error: failure as Error,
        }),
      );
      return 'forwarded-to-dlq';
    }
  };
}

export interface StandardBatchOptions {
  /**
   * Called for each record reported failed on what is its last receive (at least `maxReceiveCount`), so a
   * pipeline can record an outcome before the record goes to the DLQ. `error` is what its handler threw;
   * on a FIFO queue it is undefined for a record that was skipped, never attempted, because an earlier
   * record of its group failed: such a record uses up its receives all the same and would otherwise reach
   * the DLQ unseen. Errors the callback throws are logged, not raised: the record is reported failed
   * either way.
   */
  readonly onLastReceiveFailure?: (record: SQSRecord, error: unknown) => Promise<void>;
  /** The source queue's maxReceiveCount. @default - MAX_RECEIVE_COUNT, which QueueConsumer sets */
  readonly maxReceiveCount?: number;
}

/** Standard queue: records run concurrently; failures are reported one by one (partial batch response). */
export async function processStandardBatch(
  event: SQSEvent,
  context: Context,
  handler: RecordHandler,
  options: StandardBatchOptions = {},
): Promise<SQSBatchResponse> {
  const errors = new Map<string, unknown>();
  const response = await processPartialResponse(
    event,
    async (record: SQSRecord) => {
      try {
        return await handler(record);
      } catch (error) {
        errors.set(record.messageId, error);
        throw error;
      }
    },
    new BatchProcessor(EventType.SQS),
    { context, processInParallel: true, throwOnFullBatchFailure: false },
  );
  await tellLastReceiveFailures(event.Records, response.batchItemFailures, errors, options);
  return response;
}

/** Run `onLastReceiveFailure` for the failed records that are on their last receive. */
async function tellLastReceiveFailures(
  records: readonly SQSRecord[],
  failures: readonly SQSBatchItemFailure[],
  errors: ReadonlyMap<string, unknown>,
  options: StandardBatchOptions,
): Promise<void> {
  const onLastReceiveFailure = options.onLastReceiveFailure;
  if (!onLastReceiveFailure) return;
  const limit =
    options.maxReceiveCount ?? Number(process.env[KIT_ENV.maxReceiveCount] ?? Number.POSITIVE_INFINITY);
  const failed = new Set(failures.map((f) => f.itemIdentifier));
  const givenUp = records.filter((r) => failed.has(r.messageId) && receiveCount(r) >= limit);
  await Promise.all(
    givenUp.map((record) =>
      onLastReceiveFailure(record, errors.get(record.messageId)).catch((error: unknown) =>
        logger.error('could not record the outcome of a record on its last receive', {
          ...looseIds(record.body),
          messageId: record.messageId,
          error: error as Error,
        }),
      ),
    ),
  );
}

/** What one FIFO group's run reports: its records to retry. */
export interface GroupResult {
  readonly batchItemFailures: SQSBatchItemFailure[];
}

export interface FifoBatchOptions extends StandardBatchOptions {
  /**
   * Wraps each group's run, and is given the group's records (the crawler leases the group with it, and
   * records at once what it fetched for records that are reported failed and so come back). The run's
   * result is the group's records reported failed.
   */
  readonly aroundGroup?: (
    run: () => Promise<GroupResult>,
    records: readonly SQSRecord[],
  ) => Promise<GroupResult>;
  /**
   * Wraps the in-order run of a group's records only, not the wait for work they handed to `finishLater`
   * (the crawler counts a group as busy with it while its records fetch, so their batched sends go out
   * once every record of the group has fetched).
   */
  readonly aroundRecords?: <T>(run: () => Promise<T>) => Promise<T>;
  /**
   * When a group's failed records come back. Lambda leaves a failed record invisible for the queue's whole
   * visibility timeout (6 × the function timeout under QueueConsumer), and a FIFO group stays locked while
   * any of its records is: one failing page would hold its host for minutes per retry. Given this, the
   * handler sets the group's failed records to come back after `seconds(first, error)`: the group's first
   * failed record and what it threw (undefined when its work was never attempted). `undefined` leaves them
   * to the visibility timeout. Records on their last receive are left alone: they go to the DLQ.
   */
  readonly retryDelay?: {
    readonly queueUrl: string;
    readonly client: SQSClient;
    readonly seconds: (record: SQSRecord, error: unknown) => number | undefined;
  };
}

/** SQS's bounds on a visibility timeout, in seconds. */
const MAX_VISIBILITY_SECONDS = 43_200;

/**
 * Set each group's failed records (first one's delay for all of them: a group is locked until every one is
 * visible again) to come back after the delay `retryDelay` picks. A failure to do so is logged: the
 * records then come back after the visibility timeout, as they would have anyway.
 */
async function delayRetries(
  failures: readonly SQSRecord[],
  errors: ReadonlyMap<string, unknown>,
  limit: number,
  retryDelay: NonNullable<FifoBatchOptions['retryDelay']>,
): Promise<void> {
  const byGroup = new Map<string, SQSRecord[]>();
  for (const record of failures) {
    if (receiveCount(record) >= limit) continue;
    const id = record.attributes.MessageGroupId ?? '';
    byGroup.set(id, [...(byGroup.get(id) ?? []), record]);
  }
  const entries: Array<{ Id: string; ReceiptHandle: string; VisibilityTimeout: number }> = [];
  for (const records of byGroup.values()) {
    const first = records[0] as SQSRecord;
    const seconds = retryDelay.seconds(first, errors.get(first.messageId));
    if (seconds === undefined || !Number.isFinite(seconds)) continue;
    const timeout = Math.min(MAX_VISIBILITY_SECONDS, Math.max(0, Math.round(seconds)));
    for (const record of records)
      entries.push({
        Id: String(entries.length),
        ReceiptHandle: record.receiptHandle,
        VisibilityTimeout: timeout,
      });
  }
  for (let i = 0; i < entries.length; i += 10) {
    const chunk = entries.slice(i, i + 10);
    try {
      const out = await retryDelay.client.send(
        new ChangeMessageVisibilityBatchCommand({ QueueUrl: retryDelay.queueUrl, Entries: chunk }),
      );
      if (out.Failed?.length)
        logger.warn('some failed records keep their visibility timeout', {
          failed: out.Failed.map((f) => f.Code),
        });
    } catch (error) {
      logger.warn('could not shorten the retry delay of failed records', { error: error as Error });
    }
  }
}

/** A record whose work goes on after its handler returned: see `finishLater`. */
export class FinishingLater {
  constructor(readonly work: Promise<unknown>) {
    // Awaited by processFifoBatchByGroup; this only keeps an early rejection from counting as unhandled.
    work.catch(() => undefined);
  }
}

/**
 * Returned by a FIFO record handler: the next record of the group may start, while this one's `work` (its
 * hand-off, say) finishes. The group's result waits for it: if it fails, the record is reported failed with
 * its error, and so is every record after it in the group, as if it had failed in order. Those later
 * records may already have had their effects, so this is for handlers whose effects are idempotent.
 */
export const finishLater = (work: Promise<unknown>): FinishingLater => new FinishingLater(work);

/**
 * FIFO queue: message groups run concurrently, and each group's records run in order. After a failure the
 * rest of that group is reported too (skipGroupOnError), so its order holds; other groups go on.
 *
 * The records skipped after a failure still use up a receive each, as on AWS: a record behind a message
 * that keeps failing can reach the DLQ without ever being attempted. `onLastReceiveFailure` is told of
 * every failed record on its last receive, attempted or skipped.
 */
export async function processFifoBatchByGroup(
  event: SQSEvent,
  context: Context,
  handler: RecordHandler,
  options: FifoBatchOptions = {},
): Promise<SQSBatchResponse> {
  const aroundGroup = options.aroundGroup ?? ((run) => run());
  const aroundRecords = options.aroundRecords ?? ((run) => run());
  const groups = new Map<string, SQSRecord[]>();
  for (const record of event.Records) {
    const id = record.attributes.MessageGroupId ?? '';
    const list = groups.get(id) ?? [];
    list.push(record);
    groups.set(id, list);
  }
  // What each attempted record threw; a failed record absent from it was skipped.
  const errors = new Map<string, unknown>();
  // Work records handed to finishLater, by message id.
  const later = new Map<string, Promise<unknown>>();
  const tracked: RecordHandler = async (record) => {
    try {
      const result = await handler(record);
      if (result instanceof FinishingLater) later.set(record.messageId, result.work);
      return result;
    } catch (error) {
      errors.set(record.messageId, error);
      throw error;
    }
  };
  /**
   * Wait for all of the group's unfinished work, in record order (so nothing outlives the invocation): the
   * first record whose work failed fails, with every record after it. A record whose own work failed too
   * keeps its own error for onLastReceiveFailure.
   */
  const settle = async (
    records: SQSRecord[],
    result: { batchItemFailures: SQSBatchItemFailure[] },
  ): Promise<{ batchItemFailures: SQSBatchItemFailure[] }> => {
    // A copy: Powertools may hand back a response object it shares between calls.
    const batchItemFailures = [...result.batchItemFailures];
    const failed = new Set(batchItemFailures.map((f) => f.itemIdentifier));
    let broken = false;
    for (const record of records) {
      await later.get(record.messageId)?.catch((error: unknown) => {
        errors.set(record.messageId, error);
        broken = true;
      });
      if (broken && !failed.has(record.messageId))
        batchItemFailures.push({ itemIdentifier: record.messageId });
    }
    return { batchItemFailures };
  };
  const results = await Promise.all(
    [...groups.values()].map((records) =>
      aroundGroup(async () => {
        const result = await aroundRecords(() =>
          processPartialResponse({ Records: records }, tracked, new SqsFifoPartialProcessorAsync(), {
            context,
            skipGroupOnError: true,
            throwOnFullBatchFailure: false,
          }),
        );
        return settle(records, result);
      }, records),
    ),
  );
  const batchItemFailures: SQSBatchItemFailure[] = results.flatMap((r) => r.batchItemFailures);
  const limit =
    options.maxReceiveCount ?? Number(process.env[KIT_ENV.maxReceiveCount] ?? Number.POSITIVE_INFINITY);
  const failed = new Set(batchItemFailures.map((f) => f.itemIdentifier));
  if (options.retryDelay)
    await delayRetries(
      event.Records.filter((r) => failed.has(r.messageId)),
      errors,
      limit,
      options.retryDelay,
    );
  await tellLastReceiveFailures(event.Records, batchItemFailures, errors, {
    ...options,
    maxReceiveCount: limit,
  });
  return { batchItemFailures };
}
