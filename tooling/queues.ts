import {
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  type Message,
  type MessageAttributeValue,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  StartMessageMoveTaskCommand,
} from '@aws-sdk/client-sqs';
import { FORWARD_ATTRIBUTES } from '../functions/kit/dlq';
import { attributeValueBytes, messageBytes } from '../functions/kit/send-batcher';
import type { Target } from './target';

/** One stage's queue pair, found from the stack's outputs. */
export interface StackQueue {
  /** The stage name as operators type it: `frontier` for FrontierQueueUrl/FrontierDlqUrl. */
  readonly name: string;
  readonly queueUrl: string;
  readonly dlqUrl: string;
}

/** Every `<Name>QueueUrl` output that has its `<Name>DlqUrl`, in output order. */
export function stackQueues(outputs: Readonly<Record<string, string | undefined>>): StackQueue[] {
  const queues: StackQueue[] = [];
  for (const [key, queueUrl] of Object.entries(outputs)) {
    const base = /^(.+)QueueUrl$/.exec(key)?.[1];
    const dlqUrl = base ? outputs[`${base}DlqUrl`] : undefined;
    if (base && queueUrl && dlqUrl)
      queues.push({ name: base.charAt(0).toLowerCase() + base.slice(1), queueUrl, dlqUrl });
  }
  return queues;
}

/** A queue name the stack does not have; the message lists the names it has. */
export class UnknownQueueError extends Error {
  constructor(stackName: string, name: string, known: readonly StackQueue[]) {
    const names = known.map((q) => q.name);
    const list = names.length > 1 ? `${names.slice(0, -1).join(', ')} or ${names.at(-1)}` : names[0];
    super(`name a queue of ${stackName}: ${list ?? '(none)'} (got "${name}")`);
    this.name = 'UnknownQueueError';
  }
}

/** The named queue pair of a target's stack; UnknownQueueError if it has none of that name. */
export function stackQueue(target: Target, name: string): StackQueue {
  const queues = stackQueues(target.outputs);
  const found = queues.find((q) => q.name === name);
  if (!found) throw new UnknownQueueError(target.stackName, name, queues);
  return found;
}

export interface QueueDepth {
  readonly visible: number;
  readonly inFlight: number;
  readonly delayed: number;
}

export async function queueDepth(target: Pick<Target, 'sqs'>, queueUrl: string): Promise<QueueDepth> {
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

export interface QueueStatus extends QueueDepth {
  readonly name: string;
  /** Messages in the stage's DLQ, visible or not. */
  readonly dlq: number;
}

/** Depth of every queue of the stack and of its DLQ. */
export async function stackStatus(target: Target): Promise<QueueStatus[]> {
  return Promise.all(
    stackQueues(target.outputs).map(async (q) => {
      const [depth, dlq] = await Promise.all([queueDepth(target, q.queueUrl), queueDepth(target, q.dlqUrl)]);
      return { name: q.name, ...depth, dlq: dlq.visible + dlq.inFlight };
    }),
  );
}

/** Nothing queued, delayed or in flight in any source queue (DLQs are not work waiting to be done). */
export const isIdle = (status: readonly QueueStatus[]): boolean =>
  status.every((q) => q.visible + q.inFlight + q.delayed === 0);

/** One line per status: `frontier 3 queued / 1 in flight (DLQ 0) · parse …`. */
export const formatStatus = (status: readonly QueueStatus[]): string =>
  status.map((q) => `${q.name} ${q.visible} queued / ${q.inFlight} in flight (DLQ ${q.dlq})`).join(' · ');

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

/**
 * Wait until every queue of the stack is idle three polls in a row (a poller may be between a receive and
 * its delete, or a consumer between its receive and its send to the next stage).
 */
export async function waitForIdle(target: Target, timeoutMs = 120_000): Promise<QueueStatus[]> {
  let streak = 0;
  return waitFor(
    `every queue of ${target.stackName} to go idle`,
    async () => {
      const status = await stackStatus(target);
      streak = isIdle(status) ? streak + 1 : 0;
      return streak >= 3 ? status : undefined;
    },
    { timeoutMs, intervalMs: 300 },
  );
}

export interface DlqEntry {
  readonly messageId: string;
  readonly reason: string;
  readonly receiveCount: number;
  readonly body: string;
  /**
   * The message's own attributes, not the ones a poison forward adds, by name: each value's size in bytes.
   * A parse message's page body travels in its binary attribute `body`.
   */
  readonly attributes: Readonly<Record<string, number>>;
}

/**
 * Peek at up to `max` DLQ messages of the named queue with their failure reasons. Each is made visible
 * again at once, so peeking never hides a message from a redrive.
 */
export async function peekDlq(target: Target, queue: string, max = 10): Promise<DlqEntry[]> {
  const { dlqUrl } = stackQueue(target, queue);
  const out = await target.sqs.send(
    new ReceiveMessageCommand({
      QueueUrl: dlqUrl,
      MaxNumberOfMessages: Math.min(max, 10),
      VisibilityTimeout: 0,
      MessageAttributeNames: ['All'],
      MessageSystemAttributeNames: ['All'],
    }),
  );
  return (out.Messages ?? []).map((m) => ({
    messageId: m.MessageId ?? '',
    reason:
      m.MessageAttributes?.failureReason?.StringValue ??
      `exhausted retries (see logs for ${m.MessageAttributes?.sourceMessageId?.StringValue ?? m.MessageId})`,
    receiveCount: Number(m.Attributes?.ApproximateReceiveCount ?? 0),
    body: m.Body ?? '',
    attributes: Object.fromEntries(
      Object.entries(m.MessageAttributes ?? {})
        .filter(([name]) => !FORWARD_ATTRIBUTES.has(name))
        .map(([name, value]) => [name, attributeValueBytes(value)]),
    ),
  }));
}

/**
 * Move every DLQ message back to its source queue. Uses StartMessageMoveTask where the target has it
 * (AWS); otherwise receives, re-sends and deletes in batches of 10 (fauxqs, older LocalStack).
 * The consumers are idempotent, so a message redriven twice has one effect.
 */
/** A redrive's SendMessageBatch stays under SQS's 1 MiB per call (and an emulator's smaller limits). */
const REDRIVE_BATCH_BYTES = 256 * 1024;

/** Consecutive runs of `entries` whose message sizes add up to at most `limit` (one larger entry goes alone). */
export function bySize<
  E extends { MessageBody: string; MessageAttributes?: Record<string, MessageAttributeValue> },
>(entries: E[], limit: number): E[][] {
  const parts: E[][] = [];
  let part: E[] = [];
  let bytes = 0;
  for (const entry of entries) {
    const size = messageBytes(entry.MessageBody, entry.MessageAttributes);
    if (part.length > 0 && bytes + size > limit) {
      parts.push(part);
      part = [];
      bytes = 0;
    }
    part.push(entry);
    bytes += size;
  }
  if (part.length > 0) parts.push(part);
  return parts;
}

export async function redrive(
  target: Target,
  queue: string,
  onProgress: (moved: number) => void = () => {},
): Promise<{ moved: number; method: 'message-move-task' | 'receive-send-delete' }> {
  const { queueUrl: source, dlqUrl: dlq } = stackQueue(target, queue);
  if (target.supportsMessageMoveTask) {
    const arns = await Promise.all(
      [dlq, source].map(async (url) => {
        const { Attributes } = await target.sqs.send(
          new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] }),
        );
        return Attributes?.QueueArn ?? '';
      }),
    );
    await target.sqs.send(new StartMessageMoveTaskCommand({ SourceArn: arns[0], DestinationArn: arns[1] }));
    return { moved: -1, method: 'message-move-task' };
  }
  // Move only what is there now: a message that fails straight back must not be moved again in this run.
  // In-flight ones count too: a message someone just peeked at is still there to move.
  const depth = await queueDepth(target, dlq);
  const limit = depth.visible + depth.inFlight;
  let moved = 0;
  while (moved < limit) {
    const out = await target.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: dlq,
        MaxNumberOfMessages: Math.min(10, limit - moved),
        WaitTimeSeconds: 1,
        VisibilityTimeout: 60,
        MessageAttributeNames: ['All'],
        MessageSystemAttributeNames: ['All'],
      }),
    );
    const messages: Message[] = out.Messages ?? [];
    if (messages.length === 0) break;
    const fifo = source.endsWith('.fifo');
    // A message keeps its attributes (a parse message's body travels in one), as a message move task does.
    // SendMessageBatch takes 1 MiB in all, and ten parked messages can be larger: split by size.
    const entries = messages.map((m, i) => ({
      Id: String(i),
      MessageBody: m.Body ?? '',
      ...(m.MessageAttributes && Object.keys(m.MessageAttributes).length > 0
        ? { MessageAttributes: m.MessageAttributes }
        : {}),
      ...(fifo
        ? {
            MessageGroupId: m.Attributes?.MessageGroupId ?? 'redrive',
            MessageDeduplicationId: `redrive-${m.MessageId}`,
          }
        : {}),
    }));
    const sent: { Successful: Array<{ Id?: string }> } = { Successful: [] };
    for (const part of bySize(entries, REDRIVE_BATCH_BYTES)) {
      const out = await target.sqs.send(new SendMessageBatchCommand({ QueueUrl: source, Entries: part }));
      sent.Successful.push(...(out.Successful ?? []));
    }
    // Delete only what was re-sent: a failed send leaves its message in the DLQ for the next run.
    const ok = new Set((sent.Successful ?? []).map((s) => s.Id));
    const toDelete = messages.filter((_, i) => ok.has(String(i)));
    if (toDelete.length > 0) {
      await target.sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: dlq,
          Entries: toDelete.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle })),
        }),
      );
    }
    moved += toDelete.length;
    onProgress(moved);
    if (toDelete.length < messages.length) {
      throw new Error(
        `${messages.length - toDelete.length} messages could not be re-sent; they stay in the DLQ`,
      );
    }
  }
  return { moved, method: 'receive-send-delete' };
}
