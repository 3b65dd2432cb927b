// Worked example for docs/forking.md: a new pipeline stage in a few lines of CDK.
// test/infra/forking-example.test.ts synthesizes it, so this example keeps working as the constructs change.
import path from 'node:path';
import { Duration, type Stack } from 'aws-cdk-lib';
import { AttributeType, BillingMode, Table } from 'aws-cdk-lib/aws-dynamodb';
import type { ITopic } from 'aws-cdk-lib/aws-sns';
import { QueueConsumer } from '../../lib/constructs/queue-consumer';
import { QueueWithDlq } from '../../lib/constructs/queue-with-dlq';

/** Adds "count words of each stored page" behind its own queue, DLQ, alarms and consumer. */
export function addWordCountStage(stack: Stack, alarmTopic: ITopic) {
  const timeout = Duration.seconds(20);
  const queue = new QueueWithDlq(stack, 'WordCountQueue', {
    visibilityTimeout: Duration.seconds(timeout.toSeconds() * 6),
    alarmTopic,
  });
  const counts = new Table(stack, 'WordCountTable', {
    partitionKey: { name: 'url', type: AttributeType.STRING },
    billingMode: BillingMode.PAY_PER_REQUEST,
    pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
  });
  const consumer = new QueueConsumer(stack, 'WordCounter', {
    entry: path.join(import.meta.dirname, 'word-count-handler.ts'),
    source: queue,
    serviceName: 'word-counter',
    timeout,
  }).bindTable(counts, 'rw', 'COUNTS_TABLE');
  return { queue, counts, consumer };
}
