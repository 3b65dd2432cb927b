import { GetQueueAttributesCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { SQSRecord } from 'aws-lambda';

/**
 * The source queue's visibility timeout, asked of SQS itself (the consumer's role may read its queue's
 * attributes) rather than from configuration, so an operator's change, or the sandbox's shorter timeout,
 * is what the handler sees. Kept for a minute per environment; `undefined` when the queue is not known or
 * the call failed, which callers must treat as "another receive may come at any time".
 */
export class SourceVisibility {
  private cached?: { seconds: number | undefined; until: number };

  constructor(
    private readonly queueUrl: string | undefined,
    private readonly client: SQSClient,
    private readonly keepMs = 60_000,
  ) {}

  async seconds(now = Date.now()): Promise<number | undefined> {
    if (this.cached && now < this.cached.until) return this.cached.seconds;
    let seconds: number | undefined;
    if (this.queueUrl) {
      try {
        const out = await this.client.send(
          new GetQueueAttributesCommand({ QueueUrl: this.queueUrl, AttributeNames: ['VisibilityTimeout'] }),
        );
        const value = Number(out.Attributes?.VisibilityTimeout);
        seconds = Number.isFinite(value) && value >= 0 ? value : undefined;
      } catch {
        seconds = undefined;
      }
    }
    // A failed call is asked again soon rather than leaving the handler on its careful path for a minute.
    this.cached = { seconds, until: now + (seconds === undefined ? 5_000 : this.keepMs) };
    return seconds;
  }
}

/** Clock skew between SQS and Lambda, and the poller's own steps, allowed for on top of the deadline. */
export const EXCLUSIVE_MARGIN_MS = 10_000;

/**
 * When SQS could next hand any of these records to another consumer (epoch ms), or undefined when that
 * is not known. Known only for records on their first receive: then ApproximateFirstReceiveTimestamp is
 * this receive, and the records stay hidden for the visibility timeout after it. A record received before
 * may have been received again since, at a time the record does not carry.
 */
export function hiddenUntil(
  records: readonly SQSRecord[],
  visibilitySeconds: number | undefined,
): number | undefined {
  if (visibilitySeconds === undefined || records.length === 0) return undefined;
  let earliest = Number.POSITIVE_INFINITY;
  for (const record of records) {
    if (record.attributes.ApproximateReceiveCount !== '1') return undefined;
    const received = Number(record.attributes.ApproximateFirstReceiveTimestamp);
    if (!Number.isFinite(received) || received <= 0) return undefined;
    earliest = Math.min(earliest, received);
  }
  return earliest + visibilitySeconds * 1000;
}

/**
 * Whether no other receive can get these records while this invocation may still run: their visibility
 * outlasts its deadline by the margin. Then mutual exclusion costs nothing; otherwise the caller needs a
 * lease. With a visibility timeout of 6 × the function timeout (QueueConsumer enforces it), that is every
 * first receive that was invoked within five timeouts of being received.
 */
export function receivedExclusively(
  records: readonly SQSRecord[],
  visibilitySeconds: number | undefined,
  deadlineMs: number,
  marginMs = EXCLUSIVE_MARGIN_MS,
): boolean {
  const until = hiddenUntil(records, visibilitySeconds);
  return until !== undefined && deadlineMs + marginMs <= until;
}
