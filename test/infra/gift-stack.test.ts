import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Validations } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks, ServerlessChecks } from 'cdk-nag';
import { describe, expect, it } from 'vitest';
import { loadStageConfig } from '../../lib/config';
import { GiftStack } from '../../lib/stacks/gift-stack';
import { templateApp } from './synth';

const ROOT = path.join(import.meta.dirname, '..', '..');

function synthGift(stage: 'dev' | 'prod' = 'dev') {
  const app = templateApp();
  const stack = new GiftStack(app, `Gift-${stage}`, { config: loadStageConfig({ stage }) });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app), new ServerlessChecks(app));
  return { app, stack, template: Template.fromStack(stack) };
}
const { app, template } = synthGift();
type Resource = { Type: string; Properties: Record<string, unknown> };
const resources = template.toJSON().Resources as Record<string, Resource>;
const idOf = (type: string, prefix: string) => {
  const ids = Object.keys(resources).filter((k) => resources[k]?.Type === type && k.startsWith(prefix));
  expect(ids, `${type} ${prefix}`).toHaveLength(1);
  return ids[0] as string;
};

describe('GiftStack on the pipeline kit', () => {
  it('queues entries FIFO per user with a FIFO DLQ, and notifications on a standard queue dead-lettered after 3 receives', () => {
    const entriesDlq = idOf('AWS::SQS::Queue', 'EntriesDlq');
    expect(resources[idOf('AWS::SQS::Queue', 'EntriesQueue')]?.Properties).toMatchObject({
      FifoQueue: true,
      DeduplicationScope: 'messageGroup',
      FifoThroughputLimit: 'perMessageGroupId',
      RedrivePolicy: { deadLetterTargetArn: { 'Fn::GetAtt': [entriesDlq, 'Arn'] }, maxReceiveCount: 5 },
    });
    expect(resources[entriesDlq]?.Properties.FifoQueue).toBe(true);
    const notify = resources[idOf('AWS::SQS::Queue', 'NotifyQueue')]?.Properties;
    expect(notify?.FifoQueue).toBeUndefined();
    expect(notify?.RedrivePolicy).toMatchObject({ maxReceiveCount: 3 });
    // The visibility timeout is derived from the consumer: 6 × its timeout.
    expect(resources[idOf('AWS::SQS::Queue', 'EntriesQueue')]?.Properties.VisibilityTimeout).toBe(120);
    expect(notify?.VisibilityTimeout).toBe(180);
  });

  it('tells each function its tables, queues and metrics namespace, and reports batch item failures', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: Match.objectLike({
          POWERTOOLS_SERVICE_NAME: 'issue',
          POWERTOOLS_METRICS_NAMESPACE: 'GiftPipeline',
          STOCK_TABLE: { Ref: idOf('AWS::DynamoDB::Table', 'StockTable') },
          GRANTS_TABLE: { Ref: idOf('AWS::DynamoDB::Table', 'GrantsTable') },
          NOTIFY_QUEUE_URL: { Ref: idOf('AWS::SQS::Queue', 'NotifyQueue') },
          DLQ_URL: { Ref: idOf('AWS::SQS::Queue', 'EntriesDlq') },
          MAX_RECEIVE_COUNT: '5',
        }),
      },
    });
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: Match.objectLike({
          POWERTOOLS_SERVICE_NAME: 'notify',
          NOTIFICATIONS_TABLE: { Ref: idOf('AWS::DynamoDB::Table', 'NotificationsTable') },
          MAX_RECEIVE_COUNT: '3',
        }),
      },
    });
    template.resourcePropertiesCountIs(
      'AWS::Lambda::EventSourceMapping',
      { FunctionResponseTypes: ['ReportBatchItemFailures'] },
      2,
    );
  });

  it('grants the notify function nothing on the stock or grants tables, and no statement uses "*"', () => {
    const policy = resources[idOf('AWS::IAM::Policy', 'NotifyConsumerRoleDefaultPolicy')]?.Properties
      .PolicyDocument as { Statement: Array<{ Resource: unknown; Action: unknown }> };
    const text = JSON.stringify(policy);
    expect(text).toContain(idOf('AWS::DynamoDB::Table', 'NotificationsTable'));
    expect(text).not.toContain(idOf('AWS::DynamoDB::Table', 'StockTable'));
    expect(text).not.toContain(idOf('AWS::DynamoDB::Table', 'GrantsTable'));
    for (const r of Object.values(resources).filter((r) => r.Type === 'AWS::IAM::Policy'))
      expect(JSON.stringify(r.Properties.PolicyDocument)).not.toMatch(/"Resource":"\*"|"\*"\]/);
  });

  it('outputs every queue, DLQ and table by the kit’s naming convention, with the record TTL', () => {
    expect(Object.keys(template.findOutputs('*')).sort()).toEqual(
      [
        'AlarmTopicArn',
        'EntriesDlqUrl',
        'EntriesQueueUrl',
        'GrantsTableName',
        'NotificationsTableName',
        'NotifyDlqUrl',
        'NotifyQueueUrl',
        'RecordTtlSeconds',
        'StockTableName',
      ].sort(),
    );
    template.hasResourceProperties('AWS::DynamoDB::Table', {
      TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      BillingMode: 'PAY_PER_REQUEST',
    });
  });

  it('alarms on both DLQs and both backlogs, notifying the alarm topic, and draws both stages on a dashboard', () => {
    template.resourceCountIs('AWS::CloudWatch::Alarm', 4);
    template.allResourcesProperties('AWS::CloudWatch::Alarm', {
      AlarmActions: [{ Ref: idOf('AWS::SNS::Topic', 'AlarmTopic') }],
    });
    const body = JSON.stringify(
      template.toJSON().Resources[idOf('AWS::CloudWatch::Dashboard', 'Dashboard')].Properties.DashboardBody,
    );
    for (const m of ['couponsGranted', 'soldOut', 'notificationsSent', 'ApproximateAgeOfOldestMessage'])
      expect(body).toContain(m);
  });

  it('synthesizes with zero unacknowledged cdk-nag findings', () => {
    expect(() => app.synth()).not.toThrow();
  });
});

describe('the kit’s promises, checked on the source', () => {
  it('keeps each gift stage to at most 15 lines of CDK', () => {
    const source = readFileSync(path.join(ROOT, 'lib', 'stacks', 'gift-stack.ts'), 'utf8').split('\n');
    const stages: number[] = [];
    source.forEach((line, i) => {
      if (!/new PipelineStage\(/.test(line)) return;
      let end = i;
      while (!source[end]?.trimEnd().endsWith(';')) end++;
      stages.push(end - i + 1);
    });
    expect(stages).toHaveLength(2);
    for (const lines of stages) expect(lines).toBeLessThanOrEqual(15);
  });

  it('lets no construct import pipeline code: only the CDK, constructs, each other and functions/kit', () => {
    const dir = path.join(ROOT, 'lib', 'constructs');
    for (const file of readdirSync(dir)) {
      const imports = [...readFileSync(path.join(dir, file), 'utf8').matchAll(/from '([^']+)'/g)].map(
        (m) => m[1],
      );
      for (const from of imports)
        expect(from, `${file} imports ${from}`).toMatch(
          /^(aws-cdk-lib(\/.*)?|constructs|\.\/[a-z-]+|\.\.\/\.\.\/functions\/kit\/[a-z-]+)$/,
        );
    }
  });

  it('keeps the kit (functions/kit) free of any pipeline’s code', () => {
    const dir = path.join(ROOT, 'functions', 'kit');
    for (const file of readdirSync(dir)) {
      const imports = [...readFileSync(path.join(dir, file), 'utf8').matchAll(/from '([^']+)'/g)].map(
        (m) => m[1],
      );
      for (const from of imports) expect(from, `${file} imports ${from}`).not.toMatch(/^\.\.\//);
    }
  });
});
