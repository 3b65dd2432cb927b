import {
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  type Message,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  StartMessageMoveTaskCommand,
} from '@aws-sdk/client-sqs';
import type { Target } from './target';

export type QueueName = 'frontier' | 'parse';

export function queuePair(target: Target, which: QueueName): { source: string; dlq: string } {
  const o = target.outputs;
  return which === 'frontier'
    ? { source: o.FrontierQueueUrl, dlq: o.FrontierDlqUrl }
    : { source: o.ParseQueueUrl, dlq: o.ParseDlqUrl };
}

export interface DlqEntry {
  readonly messageId: string;
  readonly reason: string;
  readonly receiveCount: number;
  readonly body: string;
}

/**
 * Peek at up to `max` DLQ messages with their failure reasons. Each is made visible again at once, so
 * peeking never hides a message from a redrive.
 */
export async function peekDlq(target: Target, which: QueueName, max = 10): Promise<DlqEntry[]> {
  const { dlq } = queuePair(target, which);
  const out = await target.sqs.send(
    new ReceiveMessageCommand({
      QueueUrl: dlq,
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
  }));
}

/**
 * Move every DLQ message back to its source queue. Uses StartMessageMoveTask where the target has it
 * (AWS); otherwise receives, re-sends and deletes in batches of 10 (fauxqs, older LocalStack).
 * The consumers are idempotent, so a message redriven twice has one effect.
 */
export async function redrive(
  target: Target,
  which: QueueName,
  onProgress: (moved: number) => void = () => {},
): Promise<{ moved: number; method: 'message-move-task' | 'receive-send-delete' }> {
  const { source, dlq } = queuePair(target, which);
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
  const { Attributes } = await target.sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: dlq,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
    }),
  );
  const limit =
    Number(Attributes?.ApproximateNumberOfMessages ?? 0) +
    Number(Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0);
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
    const sent = await target.sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: source,
        Entries: messages.map((m, i) => ({
          Id: String(i),
          MessageBody: m.Body ?? '',
          ...(fifo
            ? {
                MessageGroupId: m.Attributes?.MessageGroupId ?? 'redrive',
                MessageDeduplicationId: `redrive-${m.MessageId}`,
              }
            : {}),
        })),
      }),
    );
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
