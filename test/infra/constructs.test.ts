import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { App, type CfnElement, Duration, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { AttributeType, Table } from 'aws-cdk-lib/aws-dynamodb';
import { BUNDLING_STACKS } from 'aws-cdk-lib/cx-api';
import { describe, expect, it } from 'vitest';
import { QueueConsumer, type QueueConsumerProps } from '../../lib/constructs/queue-consumer';
import { QueueWithDlq, type QueueWithDlqProps } from '../../lib/constructs/queue-with-dlq';

const entry = path.join(import.meta.dirname, 'fixtures', 'noop-handler.ts');

function consumer(
  queueProps: QueueWithDlqProps,
  consumerProps: Partial<QueueConsumerProps> = {},
  { bundle = false }: { bundle?: boolean } = {},
) {
  // Bundled only where a test reads the bundle: with no stack to bundle, a construct's checks and template
  // cost no esbuild run.
  const stack = new Stack(new App(bundle ? {} : { context: { [BUNDLING_STACKS]: [] } }), 'T');
  const source = new QueueWithDlq(stack, 'Q', queueProps);
  const c = new QueueConsumer(stack, 'C', { entry, source, serviceName: 'svc', ...consumerProps });
  return { stack, source, consumer: c };
}

describe('QueueWithDlq', () => {
  it('pairs a standard queue with a standard DLQ, maxReceiveCount 5, SSE and 14-day DLQ retention by default', () => {
    const stack = new Stack(new App(), 'T');
    const q = new QueueWithDlq(stack, 'Q');
    const t = Template.fromStack(stack);
    t.resourceCountIs('AWS::SQS::Queue', 2);
    t.hasResourceProperties('AWS::SQS::Queue', {
      RedrivePolicy: {
        maxReceiveCount: 5,
        deadLetterTargetArn: {
          'Fn::GetAtt': [stack.getLogicalId(q.deadLetterQueue.node.defaultChild as CfnElement), 'Arn'],
        },
      },
      SqsManagedSseEnabled: true,
    });
    t.hasResourceProperties('AWS::SQS::Queue', { MessageRetentionPeriod: 1_209_600 });
    expect(q.fifo).toBe(false);
  });

  it('rejects high-throughput FIFO on a standard queue', () => {
    const stack = new Stack(new App(), 'T');
    expect(() => new QueueWithDlq(stack, 'Q', { highThroughputFifo: true })).toThrow(
      /highThroughputFifo \(true\) needs fifo: true/,
    );
  });

  it('rejects a maxReceiveCount below 1, showing the value', () => {
    const stack = new Stack(new App(), 'T');
    expect(() => new QueueWithDlq(stack, 'Q', { maxReceiveCount: 0 })).toThrow(/maxReceiveCount \(0\)/);
  });
});

describe('QueueConsumer', () => {
  it('rejects a visibility timeout under 6 × the function timeout, naming both values and the fix', () => {
    expect(() =>
      consumer({ visibilityTimeout: Duration.seconds(100) }, { timeout: Duration.seconds(20) }),
    ).toThrow(
      'visibilityTimeout (100s) of the source queue must be at least 6 × the function timeout (20s) = 120s',
    );
  });

  it('adds the batching window to the visibility timeout it requires', () => {
    expect(() =>
      consumer(
        { visibilityTimeout: Duration.seconds(120) },
        { timeout: Duration.seconds(20), maxBatchingWindow: Duration.seconds(5) },
      ),
    ).toThrow('6 × the function timeout (20s) plus the batching window (5s) = 125s');
    expect(() =>
      consumer(
        { visibilityTimeout: Duration.seconds(125) },
        { timeout: Duration.seconds(20), maxBatchingWindow: Duration.seconds(5) },
      ),
    ).not.toThrow();
  });

  it('accepts a visibility timeout of exactly 6 × the function timeout', () => {
    const { stack } = consumer(
      { visibilityTimeout: Duration.seconds(120) },
      { timeout: Duration.seconds(20) },
    );
    Template.fromStack(stack).hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionResponseTypes: ['ReportBatchItemFailures'],
    });
  });

  it('rejects a FIFO batch above 10, a FIFO batching window, and a maxConcurrency below 2', () => {
    const fifo = { fifo: true, visibilityTimeout: Duration.minutes(3) };
    expect(() => consumer(fifo, { batchSize: 11 })).toThrow(
      /batchSize \(11\) must be a whole number from 1 to 10 for a FIFO source/,
    );
    expect(() => consumer(fifo, { maxBatchingWindow: Duration.seconds(5) })).toThrow(
      /maxBatchingWindow \(5 seconds\) is not allowed on a FIFO source/,
    );
    expect(() => consumer({ visibilityTimeout: Duration.minutes(3) }, { maxConcurrency: 1 })).toThrow(
      /maxConcurrency \(1\)/,
    );
  });

  it('ships the heap exec wrapper in the bundle and points Lambda at it when semiSpaceMb or heapGrowingPercent is set, and only then', () => {
    const queue = { visibilityTimeout: Duration.minutes(3) };
    const bundled = (consumerProps: Partial<QueueConsumerProps>) => {
      const { stack } = consumer(queue, consumerProps, { bundle: true });
      const fn = Object.values(Template.fromStack(stack).findResources('AWS::Lambda::Function'))[0];
      const key = fn?.Properties.Code.S3Key as string;
      const dir = path.join((stack.node.root as App).outdir, `asset.${key.replace(/\.zip$/, '')}`);
      return { env: fn?.Properties.Environment.Variables as Record<string, string>, dir };
    };
    const withSemi = bundled({ semiSpaceMb: 3 });
    expect(withSemi.env).toMatchObject({
      AWS_LAMBDA_EXEC_WRAPPER: '/var/task/heap-wrapper.sh',
      V8_SEMI_SPACE_MB: '3',
    });
    const shipped = path.join(withSemi.dir, 'heap-wrapper.sh');
    // Executable, as Lambda needs; the CDK's zip keeps the file's mode.
    expect(statSync(shipped).mode & 0o111).toBe(0o111);
    expect(readFileSync(shipped, 'utf8')).toBe(
      readFileSync(path.join(import.meta.dirname, '..', '..', 'functions', 'kit', 'heap-wrapper.sh'), 'utf8'),
    );
    expect(withSemi.env).not.toHaveProperty('V8_HEAP_GROWING_PERCENT');
    // Each value alone is enough to ship the wrapper, which leaves the other flag as the bootstrap passed it.
    const withGrowth = bundled({ heapGrowingPercent: 200 });
    expect(withGrowth.env).toMatchObject({
      AWS_LAMBDA_EXEC_WRAPPER: '/var/task/heap-wrapper.sh',
      V8_HEAP_GROWING_PERCENT: '200',
    });
    expect(withGrowth.env).not.toHaveProperty('V8_SEMI_SPACE_MB');
    expect(statSync(path.join(withGrowth.dir, 'heap-wrapper.sh')).mode & 0o111).toBe(0o111);
    const both = consumer(queue, { semiSpaceMb: 2, heapGrowingPercent: 150 });
    Template.fromStack(both.stack).hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ V8_SEMI_SPACE_MB: '2', V8_HEAP_GROWING_PERCENT: '150' }) },
    });
    const without = bundled({});
    expect(without.env).not.toHaveProperty('AWS_LAMBDA_EXEC_WRAPPER');
    expect(without.env).not.toHaveProperty('V8_SEMI_SPACE_MB');
    expect(without.env).not.toHaveProperty('V8_HEAP_GROWING_PERCENT');
    expect(() => statSync(path.join(without.dir, 'heap-wrapper.sh'))).toThrow(/ENOENT/);
  });

  it('rejects a semiSpaceMb that is not a whole number of MB up to a quarter of the memory', () => {
    const queue = { visibilityTimeout: Duration.minutes(3) };
    for (const semiSpaceMb of [0, 1.5, 129])
      expect(() => consumer(queue, { semiSpaceMb })).toThrow(
        `semiSpaceMb (${semiSpaceMb}) must be a whole number of MB from 1 to a quarter of memorySize (128)`,
      );
    expect(() => consumer(queue, { semiSpaceMb: 128 })).not.toThrow();
    expect(() => consumer(queue, { semiSpaceMb: 49, memorySize: 192 })).toThrow(/semiSpaceMb \(49\).*\(48\)/);
  });

  it('rejects a heapGrowingPercent that is not a whole number from 1 to 400', () => {
    const queue = { visibilityTimeout: Duration.minutes(3) };
    for (const heapGrowingPercent of [0, 150.5, 401, -100])
      expect(() => consumer(queue, { heapGrowingPercent })).toThrow(
        `heapGrowingPercent (${heapGrowingPercent}) must be a whole number from 1 to 400`,
      );
    for (const heapGrowingPercent of [1, 400])
      expect(() => consumer(queue, { heapGrowingPercent })).not.toThrow();
  });

  it('binds a table with item-level actions on that table only and exports its name', () => {
    const { stack, consumer: c } = consumer({ visibilityTimeout: Duration.minutes(3) });
    const table = new Table(stack, 'Tbl', { partitionKey: { name: 'pk', type: AttributeType.STRING } });
    c.bindTable(table, 'r', 'MY_TABLE');
    const t = Template.fromStack(stack);
    const tableId = stack.getLogicalId(table.node.defaultChild as CfnElement);
    t.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          {
            Action: [
              'dynamodb:GetItem',
              'dynamodb:BatchGetItem',
              'dynamodb:Query',
              'dynamodb:ConditionCheckItem',
            ],
            Effect: 'Allow',
            Resource: [{ 'Fn::GetAtt': [tableId, 'Arn'] }],
          },
        ]),
      },
    });
    t.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: { MY_TABLE: { Ref: tableId }, POWERTOOLS_SERVICE_NAME: 'svc' } },
    });
  });

  it('adds the PartiQL write actions asked for to a read-write binding, and refuses them on a read-only one', () => {
    const { stack, consumer: c } = consumer({ visibilityTimeout: Duration.minutes(3) });
    const table = new Table(stack, 'Tbl', { partitionKey: { name: 'pk', type: AttributeType.STRING } });
    c.bindTable(table, 'rw', 'MY_TABLE', { partiql: ['insert'] });
    const tableId = stack.getLogicalId(table.node.defaultChild as CfnElement);
    Template.fromStack(stack).hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Action: Match.arrayWith(['dynamodb:UpdateItem', 'dynamodb:PartiQLInsert']),
            Resource: [{ 'Fn::GetAtt': [tableId, 'Arn'] }],
          }),
        ]),
      },
    });
    const policy = JSON.stringify(Template.fromStack(stack).findResources('AWS::IAM::Policy'));
    expect(policy).not.toContain('PartiQLUpdate');
    expect(() => c.bindTable(table, 'r', 'OTHER', { partiql: ['update'] })).toThrow(
      "T/C: PartiQL writes on a table need mode 'rw', not 'r'",
    );
  });
});
