import { App, type CfnElement } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { addWordCountStage } from '../../docs/examples/word-count-stage';
import { PipelineStack } from '../../lib/constructs/pipeline-stack';

describe('the forking guide example (docs/forking.md)', () => {
  it('adds a queue with its DLQ and alarms, a consumer reporting batch item failures, and their outputs', () => {
    const stack = new PipelineStack(new App(), 'Fork', { metricsNamespace: 'Fork' });
    const { stage, counts } = addWordCountStage(stack);
    const t = Template.fromStack(stack);
    t.resourceCountIs('AWS::SQS::Queue', 2);
    t.resourceCountIs('AWS::CloudWatch::Alarm', 2);
    t.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionResponseTypes: ['ReportBatchItemFailures'],
    });
    t.hasResourceProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: {
          COUNTS_TABLE: { Ref: stack.getLogicalId(counts.node.defaultChild as CfnElement) },
          POWERTOOLS_METRICS_NAMESPACE: 'Fork',
        },
      },
    });
    // 6 × the 20 s timeout: the kit derives the visibility timeout from the consumer.
    expect(stage.visibilityTimeout.toSeconds()).toBe(120);
    expect(Object.keys(t.findOutputs('*')).sort()).toEqual(
      [
        'AlarmTopicArn',
        'RecordTtlSeconds',
        'WordCountDlqUrl',
        'WordCountQueueUrl',
        'WordCountTableName',
      ].sort(),
    );
    expect(stage.consumer.function.runtime.name).toBe('nodejs24.x');
  });

  it('makes the table the kit’s idempotency helper expects: key id, expiring by expiration', () => {
    const stack = new PipelineStack(new App(), 'Idem', { metricsNamespace: 'Idem' });
    stack.addIdempotencyTable('IdempotencyTable');
    Template.fromStack(stack).hasResourceProperties('AWS::DynamoDB::Table', {
      KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
      TimeToLiveSpecification: { AttributeName: 'expiration', Enabled: true },
      BillingMode: 'PAY_PER_REQUEST',
    });
    expect(Object.keys(Template.fromStack(stack).findOutputs('IdempotencyTableName'))).toEqual([
      'IdempotencyTableName',
    ]);
  });

  it('refuses a stage outside a PipelineStack, naming its path', async () => {
    const { Stack } = await import('aws-cdk-lib');
    const { PipelineStage } = await import('../../lib/constructs/pipeline-stage');
    const plain = new Stack(new App(), 'Plain');
    expect(() => new PipelineStage(plain, 'Lost', { entry: 'x.ts', serviceName: 'lost' })).toThrow(
      'Plain/Lost: a PipelineStage must be created inside a PipelineStack',
    );
  });
});
