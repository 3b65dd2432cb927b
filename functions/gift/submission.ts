import { randomUUID } from 'node:crypto';
import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { parseMessage } from '../kit/envelope';
import { EntryMessage, entryHash, entryMessage } from './messages';

export interface Entry {
  readonly eventId: string;
  readonly userId: string;
  readonly answers: Record<string, string>;
}

/**
 * Accept a survey submission: validate it, put it on the entries queue and return at once, before any
 * stock is looked at (the notes' "accept immediately and queue"). Group = userId, so one user's entries
 * are decided in order; dedup id = hash(eventId, userId), so a double click inside SQS's 5-minute window
 * is dropped by the queue, and anything later is absorbed by the issue stage's claim.
 * Throws InvalidMessageError, naming the field, for an entry that can never be accepted.
 */
export async function submitEntry(sqs: SQSClient, queueUrl: string, entry: Entry): Promise<string> {
  const message = entryMessage(entry.eventId, entry.userId, entry.answers, randomUUID());
  // The same schema the issue stage applies: a bad entry is refused here, to the submitter, not dead-lettered.
  parseMessage(EntryMessage, JSON.stringify(message));
  const out = await sqs.send(
    new SendMessageCommand({
      QueueUrl: queueUrl,
      MessageBody: JSON.stringify(message),
      MessageGroupId: entry.userId,
      MessageDeduplicationId: entryHash(entry.eventId, entry.userId),
    }),
  );
  return out.MessageId ?? '';
}
