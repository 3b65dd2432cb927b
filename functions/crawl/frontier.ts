import { randomUUID } from 'node:crypto';
import {
  SendMessageBatchCommand,
  type SendMessageBatchRequestEntry,
  SendMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { sqs } from '../kit/clients';
import { envelopeFields } from '../kit/envelope';
import { RetryableError } from '../kit/errors';
import type { FrontierMessage } from './schemas';
import { frontierGroupId, urlHash } from './url';

export interface FrontierItem {
  readonly url: string;
  readonly depth: number;
  readonly discoveredFrom?: string;
  /** Sent by the attempt whose claim created the URL's record (FrontierMessage's `fresh`). */
  readonly fresh?: boolean;
}

/** SendMessageBatch takes at most 10 entries. */
const SQS_BATCH = 10;

/** Build a frontier message for one canonical URL: the one place its envelope is filled in. */
export function frontierMessage(crawlId: string, correlationId: string, item: FrontierItem): FrontierMessage {
  return {
    ...envelopeFields('frontier.url', correlationId),
    crawlId,
    payload: {
      url: item.url,
      depth: item.depth,
      ...(item.discoveredFrom ? { discoveredFrom: item.discoveredFrom } : {}),
      ...(item.fresh ? { fresh: true as const } : {}),
    },
  };
}

/**
 * Send canonical URLs to the FIFO frontier in batches of 10. Group = host (ordering and politeness per host;
 * see frontierGroupId),
 * dedup id = hash(crawlId, URL), so a resend inside the 5-minute dedup window is dropped by SQS.
 * Entries SQS rejects are retried once; any still failing raise a RetryableError, so the caller's record
 * is redelivered and its claims re-sent.
 */
export async function sendToFrontier(
  queueUrl: string,
  crawlId: string,
  correlationId: string,
  items: readonly FrontierItem[],
  client: SQSClient = sqs,
): Promise<number> {
  let sent = 0;
  for (let i = 0; i < items.length; i += SQS_BATCH) {
    let entries: SendMessageBatchRequestEntry[] = items.slice(i, i + SQS_BATCH).map((item, n) => ({
      Id: String(n),
      MessageBody: JSON.stringify(frontierMessage(crawlId, correlationId, item)),
      MessageGroupId: frontierGroupId(item.url),
      MessageDeduplicationId: urlHash(crawlId, item.url),
    }));
    for (let attempt = 0; attempt < 2 && entries.length > 0; attempt++) {
      const result = await client.send(new SendMessageBatchCommand({ QueueUrl: queueUrl, Entries: entries }));
      sent += result.Successful?.length ?? 0;
      const failed = new Set((result.Failed ?? []).map((f) => f.Id));
      entries = entries.filter((e) => failed.has(e.Id));
    }
    if (entries.length > 0) {
      throw new RetryableError(`frontier rejected ${entries.length} of ${items.length} URLs after a retry`);
    }
  }
  return sent;
}

/**
 * Send a URL again to the back of its host's group, as a new message that says how many fetch attempts
 * were made (Kafka's non-blocking retry, with the group itself as the retry topic): the host's other URLs
 * go on meanwhile, where a record failed in place would lock the group until it came back. The dedup id
 * names the attempt, so a resend after a crash (the original redelivered before it was deleted) is dropped
 * by SQS inside its 5-minute window.
 */
export async function requeueFrontier(
  queueUrl: string,
  message: FrontierMessage,
  url: string,
  attempts: number,
  client: SQSClient = sqs,
): Promise<void> {
  // A URL sent again is no longer a first send: its record may hold what the earlier message recorded.
  const { fresh: _firstSend, ...payload } = message.payload;
  const requeued: FrontierMessage = {
    ...message,
    ...envelopeFields('frontier.url', message.correlationId),
    payload: { ...payload, attempts },
  };
  await client.send(
    new SendMessageCommand({
      QueueUrl: queueUrl,
      MessageBody: JSON.stringify(requeued),
      MessageGroupId: frontierGroupId(url),
      MessageDeduplicationId: `${urlHash(message.crawlId, url)}-a${attempts}`,
    }),
  );
}

export const newCorrelationId = (): string => randomUUID();
