import { App, type CfnElement, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { describe, expect, it } from 'vitest';
import { addWordCountStage } from '../../docs/examples/word-count-stage';

describe('the forking guide example (docs/forking.md)', () => {
  it('adds a queue with its DLQ and alarms, and a consumer reporting batch item failures, in a few lines', () => {
    const stack = new Stack(new App(), 'Fork');
    const { consumer, counts } = addWordCountStage(stack, new Topic(stack, 'Alarms'));
    const t = Template.fromStack(stack);
    t.resourceCountIs('AWS::SQS::Queue', 2);
    t.resourceCountIs('AWS::CloudWatch::Alarm', 2);
    t.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionResponseTypes: ['ReportBatchItemFailures'],
    });
    t.hasResourceProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: { COUNTS_TABLE: { Ref: stack.getLogicalId(counts.node.defaultChild as CfnElement) } },
      },
    });
    expect(consumer.function.runtime.name).toBe('nodejs24.x');
  });
});
