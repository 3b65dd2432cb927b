import { type MessageAttributeValue, SendMessageCommand } from '@aws-sdk/client-sqs';
import type { SQSRecord } from 'aws-lambda';
import { sqs } from './clients';

/** The attributes forwardToDlq sets; any the record already had (a redriven message) are replaced. */
export const FORWARD_ATTRIBUTES: ReadonlySet<string> = new Set([
  'failureReason',
  'sourceMessageId',
  'sourceQueueArn',
]);

/**
 * A record's own message attributes, as SendMessage takes them back: a message's data can travel in one (a
 * parse message's body), so a forwarded message must keep them. Lambda hands binary values over as base64.
 */
export function recordAttributes(record: SQSRecord): Record<string, MessageAttributeValue> {
  const out: Array<[string, MessageAttributeValue]> = [];
  for (const [name, value] of Object.entries(record.messageAttributes ?? {})) {
    if (FORWARD_ATTRIBUTES.has(name)) continue;
    if (typeof value.binaryValue === 'string')
      out.push([name, { DataType: value.dataType, BinaryValue: Buffer.from(value.binaryValue, 'base64') }]);
    else if (typeof value.stringValue === 'string')
      out.push([name, { DataType: value.dataType, StringValue: value.stringValue }]);
  }
  // Own properties whatever the name: SQS allows an attribute called "__proto__", which an assignment
  // would take for the object's prototype, dropping the attribute from the forwarded message.
  return Object.fromEntries(out);
}

/**
 * Move a poison message to the source queue's DLQ at once, with its reason, instead of letting it burn
 * maxReceiveCount retries. The caller then reports the record as processed, so SQS deletes the original.
 * The message keeps its own attributes, so a redrive after a fix gets back the whole message.
 */
export async function forwardToDlq(dlqUrl: string, record: SQSRecord, reason: string): Promise<void> {
  const groupId = record.attributes.MessageGroupId;
  await sqs.send(
    new SendMessageCommand({
      QueueUrl: dlqUrl,
      MessageBody: record.body,
      MessageAttributes: {
        ...recordAttributes(record),
        failureReason: { DataType: 'String', StringValue: reason.slice(0, 1000) },
        sourceMessageId: { DataType: 'String', StringValue: record.messageId },
        sourceQueueArn: { DataType: 'String', StringValue: record.eventSourceARN },
      },
      ...(groupId ? { MessageGroupId: groupId, MessageDeduplicationId: record.messageId } : {}),
    }),
  );
}
