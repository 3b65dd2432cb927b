import { SendMessageCommand } from '@aws-sdk/client-sqs';
import type { SQSRecord } from 'aws-lambda';
import { sqs } from './clients';

/**
 * Move a poison message to the source queue's DLQ at once, with its reason, instead of letting it burn
 * maxReceiveCount retries. The caller then reports the record as processed, so SQS deletes the original.
 */
export async function forwardToDlq(dlqUrl: string, record: SQSRecord, reason: string): Promise<void> {
  const groupId = record.attributes.MessageGroupId;
  await sqs.send(
    new SendMessageCommand({
      QueueUrl: dlqUrl,
      MessageBody: record.body,
      MessageAttributes: {
        failureReason: { DataType: 'String', StringValue: reason.slice(0, 1000) },
        sourceMessageId: { DataType: 'String', StringValue: record.messageId },
        sourceQueueArn: { DataType: 'String', StringValue: record.eventSourceARN },
      },
      ...(groupId ? { MessageGroupId: groupId, MessageDeduplicationId: record.messageId } : {}),
    }),
  );
}
