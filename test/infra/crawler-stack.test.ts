import { App, Stack, Validations } from 'aws-cdk-lib';
import { Match } from 'aws-cdk-lib/assertions';
import { Queue } from 'aws-cdk-lib/aws-sqs';
import { AwsSolutionsChecks, ServerlessChecks } from 'cdk-nag';
import { describe, expect, it } from 'vitest';
import { loadStageConfig } from '../../lib/config';
import { synthCrawlerStack } from './synth';

const { app, stack, template } = synthCrawlerStack('dev');

type Resource = { Type: string; Properties: Record<string, unknown>; DeletionPolicy?: string };
const resources = template.toJSON().Resources as Record<string, Resource>;

/** Logical id of the single resource of `type` whose id is `prefix` plus CDK's 8-character hash. */
function logicalId(type: string, prefix: string): string {
  const ids = Object.entries(resources)
    .filter(([id, r]) => r.Type === type && new RegExp(`^${prefix}[0-9A-F]{8}$`).test(id))
    .map(([id]) => id);
  expect(ids, `${type} with id prefix ${prefix}`).toHaveLength(1);
  return ids[0] as string;
}

/** Every IAM policy statement in the template, with the policy it belongs to. */
function statements(): Array<{
  policy: string;
  Action: string | string[];
  Resource: unknown;
  Effect: string;
}> {
  return Object.entries(resources)
    .filter(([, r]) => r.Type === 'AWS::IAM::Policy')
    .flatMap(([id, r]) =>
      ((r.Properties.PolicyDocument as { Statement: Array<Record<string, unknown>> }).Statement ?? []).map(
        (s) => ({
          policy: id,
          Action: s.Action as string | string[],
          Resource: s.Resource,
          Effect: s.Effect as string,
        }),
      ),
    );
}

const asArray = <T>(v: T | T[]): T[] => (Array.isArray(v) ? v : [v]);

describe('CrawlerStack queues', () => {
  it('makes the frontier a high-throughput FIFO queue whose redrive policy targets a FIFO DLQ after 5 receives', () => {
    const dlq = logicalId('AWS::SQS::Queue', 'FrontierDlq');
    template.hasResourceProperties('AWS::SQS::Queue', {
      FifoQueue: true,
      DeduplicationScope: 'messageGroup',
      FifoThroughputLimit: 'perMessageGroupId',
      VisibilityTimeout: 360,
      SqsManagedSseEnabled: true,
      RedrivePolicy: { deadLetterTargetArn: { 'Fn::GetAtt': [dlq, 'Arn'] }, maxReceiveCount: 5 },
    });
    expect(resources[dlq]?.Properties).toMatchObject({ FifoQueue: true, MessageRetentionPeriod: 1_209_600 });
  });

  it('makes the parse queue a standard queue with a standard DLQ kept 14 days', () => {
    const dlq = logicalId('AWS::SQS::Queue', 'ParseQueueDlq');
    const queue = logicalId('AWS::SQS::Queue', 'ParseQueue');
    expect(resources[queue]?.Properties.FifoQueue).toBeUndefined();
    expect(resources[queue]?.Properties).toMatchObject({
      VisibilityTimeout: 180,
      RedrivePolicy: { deadLetterTargetArn: { 'Fn::GetAtt': [dlq, 'Arn'] }, maxReceiveCount: 5 },
    });
    expect(resources[dlq]?.Properties).toMatchObject({
      MessageRetentionPeriod: 1_209_600,
      SqsManagedSseEnabled: true,
    });
  });

  it('gives every source queue a DLQ and denies non-TLS access to all six queues', () => {
    template.resourceCountIs('AWS::SQS::Queue', 6);
    const withRedrive = Object.values(resources).filter(
      (r) => r.Type === 'AWS::SQS::Queue' && r.Properties.RedrivePolicy,
    );
    expect(withRedrive).toHaveLength(3);
    const sslPolicies = template.findResources('AWS::SQS::QueuePolicy', {
      Properties: {
        PolicyDocument: {
          Statement: Match.arrayWith([
            Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
          ]),
        },
      },
    });
    expect(Object.keys(sslPolicies)).toHaveLength(6);
  });
});

describe('CrawlerStack consumers', () => {
  it('wires the three functions through event source mappings that report batch item failures', () => {
    template.resourceCountIs('AWS::Lambda::EventSourceMapping', 3);
    // The FIFO frontier cannot have a batching window; the parse queue has none either (the crawler sends a
    // host's parse messages together), and the links queue gathers for 5 s into batches of up to 1,000 pages.
    for (const [queue, fn, concurrency, window, batch] of [
      ['FrontierQueue', 'FrontierConsumerFunction', 2, Match.absent(), 10],
      ['ParseQueue', 'ParseQueueConsumerFunction', 2, Match.absent(), 10],
      ['LinksQueue', 'LinksConsumerFunction', 2, 5, 1000],
    ] as const) {
      template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
        EventSourceArn: { 'Fn::GetAtt': [logicalId('AWS::SQS::Queue', queue), 'Arn'] },
        FunctionName: { Ref: logicalId('AWS::Lambda::Function', fn) },
        FunctionResponseTypes: ['ReportBatchItemFailures'],
        BatchSize: batch,
        ScalingConfig: { MaximumConcurrency: concurrency },
        MaximumBatchingWindowInSeconds: window,
      });
    }
  });

  it('runs the functions on arm64 Node.js 24 with their own log groups and Powertools settings, no platform INFO lines, and no X-Ray tracing by default', () => {
    for (const [fn, service] of [
      ['FrontierConsumerFunction', 'crawler'],
      ['ParseQueueConsumerFunction', 'parser'],
      ['LinksConsumerFunction', 'ranker'],
    ] as const) {
      const props = resources[logicalId('AWS::Lambda::Function', fn)]?.Properties;
      expect(props).toMatchObject({
        Runtime: 'nodejs24.x',
        Architectures: ['arm64'],
        LoggingConfig: {
          LogGroup: { Ref: logicalId('AWS::Logs::LogGroup', fn.replace('Function', 'Logs')) },
          LogFormat: 'JSON',
          SystemLogLevel: 'WARN',
        },
        Environment: { Variables: expect.objectContaining({ POWERTOOLS_SERVICE_NAME: service }) },
      });
      // Powertools follows Lambda's application log level when both are set, so they must agree.
      const { Environment, LoggingConfig } = props as {
        Environment: { Variables: Record<string, unknown> };
        LoggingConfig: { ApplicationLogLevel?: string };
      };
      expect(LoggingConfig.ApplicationLogLevel).toBe(Environment.Variables.POWERTOOLS_LOG_LEVEL);
      expect(props?.TracingConfig).toBeUndefined();
    }
    template.allResourcesProperties('AWS::Logs::LogGroup', { RetentionInDays: 7 });
  });

  it('passes every queue, table and bucket name to the function that uses it', () => {
    const env = (fn: string) =>
      (
        resources[logicalId('AWS::Lambda::Function', fn)]?.Properties.Environment as
          | { Variables: Record<string, unknown> }
          | undefined
      )?.Variables ?? {};
    expect(Object.keys(env('FrontierConsumerFunction'))).toEqual(
      expect.arrayContaining(['PARSE_QUEUE_URL', 'CRAWLS_TABLE', 'URLS_TABLE', 'BODIES_BUCKET']),
    );
    expect(Object.keys(env('ParseQueueConsumerFunction'))).toEqual(
      expect.arrayContaining(['FRONTIER_QUEUE_URL', 'URLS_TABLE', 'CRAWLS_TABLE', 'BODIES_BUCKET']),
    );
    expect(env('FrontierConsumerFunction').PARSE_QUEUE_URL).toEqual({
      Ref: logicalId('AWS::SQS::Queue', 'ParseQueue'),
    });
  });
});

describe('CrawlerStack least privilege', () => {
  it('scopes every IAM statement to named resources: none uses "*" (X-Ray, which would, is off)', () => {
    const all = statements();
    expect(all.length).toBeGreaterThan(5);
    for (const s of all) {
      expect(asArray(s.Resource), JSON.stringify(s)).not.toContain('*');
      for (const action of asArray(s.Action))
        expect(action, JSON.stringify(s)).not.toMatch(/^[a-z0-9]+:\*$|^\*$/);
    }
  });

  it('lets the crawler send only to the parse queue, its own queue (a timed-out URL requeued) and its own DLQ, and write only its own tables', () => {
    const policy = logicalId('AWS::IAM::Policy', 'FrontierConsumerRoleDefaultPolicy');
    const crawler = statements().filter((s) => s.policy === policy);
    const sqs = crawler.filter((s) => asArray(s.Action).includes('sqs:SendMessage'));
    expect(
      sqs
        .flatMap((s) => asArray(s.Resource))
        .map((r) => JSON.stringify(r))
        .sort(),
    ).toEqual(
      [
        { 'Fn::GetAtt': [logicalId('AWS::SQS::Queue', 'ParseQueue'), 'Arn'] },
        { 'Fn::GetAtt': [logicalId('AWS::SQS::Queue', 'FrontierQueue'), 'Arn'] },
        { 'Fn::GetAtt': [logicalId('AWS::SQS::Queue', 'FrontierDlq'), 'Arn'] },
      ]
        .map((r) => JSON.stringify(r))
        .sort(),
    );
    const tables = crawler
      .filter((s) => asArray(s.Action).includes('dynamodb:PutItem'))
      .flatMap((s) => asArray(s.Resource))
      .map((r) => JSON.stringify(r));
    const arn = (id: string) =>
      JSON.stringify({ 'Fn::GetAtt': [logicalId('AWS::DynamoDB::Table', id), 'Arn'] });
    expect(tables).toEqual([arn('UrlsTable')]);
  });

  it.each([
    ['FrontierConsumer', 'ParseQueue'],
    ['ParseQueueConsumer', 'FrontierQueue'],
  ])('lets the %s only send to %s, never receive, delete or purge there', (fn, queue) => {
    const policy = logicalId('AWS::IAM::Policy', `${fn}RoleDefaultPolicy`);
    const arn = JSON.stringify({ 'Fn::GetAtt': [logicalId('AWS::SQS::Queue', queue), 'Arn'] });
    const actions = statements()
      .filter((s) => s.policy === policy && asArray(s.Resource).some((r) => JSON.stringify(r) === arn))
      .flatMap((s) => asArray(s.Action))
      .sort();
    expect(actions).toContain('sqs:SendMessage');
    for (const action of actions)
      expect(action, action).toMatch(/^sqs:(SendMessage|GetQueueAttributes|GetQueueUrl)$/);
  });

  it('grants PartiQL writes only where they batch: crawler UPDATEs on URLs, parser INSERTs on pages and URLs', () => {
    const table = (id: string) =>
      JSON.stringify({ 'Fn::GetAtt': [logicalId('AWS::DynamoDB::Table', id), 'Arn'] });
    const grants = statements().flatMap((s) =>
      asArray(s.Action)
        .filter((a) => a.startsWith('dynamodb:PartiQL'))
        .flatMap((a) => asArray(s.Resource).map((r) => [s.policy, a, JSON.stringify(r)].join(' '))),
    );
    const policy = (fn: string) => logicalId('AWS::IAM::Policy', `${fn}RoleDefaultPolicy`);
    expect(grants.sort()).toEqual(
      [
        `${policy('FrontierConsumer')} dynamodb:PartiQLUpdate ${table('UrlsTable')}`,
        `${policy('ParseQueueConsumer')} dynamodb:PartiQLInsert ${table('UrlsTable')}`,
        `${policy('ParseQueueConsumer')} dynamodb:PartiQLUpdate ${table('UrlsTable')}`,
      ].sort(),
    );
  });

  it('tells each function its source queue’s maxReceiveCount', () => {
    for (const service of ['crawler', 'parser'])
      template.hasResourceProperties('AWS::Lambda::Function', {
        Environment: {
          Variables: Match.objectLike({ MAX_RECEIVE_COUNT: '5', POWERTOOLS_SERVICE_NAME: service }),
        },
      });
  });

  it('gives the crawler read-only access to the crawls table, and the parser read-only access to bodies', () => {
    const crawlsArn = { 'Fn::GetAtt': [logicalId('AWS::DynamoDB::Table', 'CrawlsTable'), 'Arn'] };
    const crawler = statements().filter(
      (s) => s.policy === logicalId('AWS::IAM::Policy', 'FrontierConsumerRoleDefaultPolicy'),
    );
    const onCrawls = crawler.filter((s) =>
      asArray(s.Resource).some((r) => JSON.stringify(r) === JSON.stringify(crawlsArn)),
    );
    expect(onCrawls.length).toBeGreaterThan(0);
    for (const s of onCrawls)
      expect(asArray(s.Action).some((a) => /Put|Update|Delete|Write/.test(a))).toBe(false);
    const parser = statements().filter(
      (s) => s.policy === logicalId('AWS::IAM::Policy', 'ParseQueueConsumerRoleDefaultPolicy'),
    );
    const s3 = parser.filter((s) => asArray(s.Action).some((a) => a.startsWith('s3:')));
    expect(s3.flatMap((s) => asArray(s.Action))).toEqual(['s3:GetObject']);
  });
});

describe('CrawlerStack storage', () => {
  it('creates three on-demand tables with point-in-time recovery, and TTL where records expire', () => {
    template.resourceCountIs('AWS::DynamoDB::Table', 3);
    template.allResourcesProperties('AWS::DynamoDB::Table', {
      BillingMode: 'PAY_PER_REQUEST',
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
    });
    const ttl = (id: string) =>
      resources[logicalId('AWS::DynamoDB::Table', id)]?.Properties.TimeToLiveSpecification;
    // A stored page drops its record's expiry (pageStoreStatement), so pages are kept.
    expect(ttl('UrlsTable')).toEqual({ AttributeName: 'expiresAt', Enabled: true });
    expect(ttl('CrawlsTable')).toEqual({ AttributeName: 'expiresAt', Enabled: true });
    expect(ttl('RanksTable')).toEqual({ AttributeName: 'expiresAt', Enabled: true });
  });

  it('blocks public access to the bodies bucket, encrypts it, expires bodies and denies non-TLS requests', () => {
    template.hasResourceProperties('AWS::S3::Bucket', {
      PublicAccessBlockConfiguration: {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      },
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
      },
      LifecycleConfiguration: {
        Rules: [Match.objectLike({ Prefix: 'bodies/', ExpirationInDays: 3, Status: 'Enabled' })],
      },
    });
    template.hasResourceProperties('AWS::S3::BucketPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
  });
});

describe('CrawlerStack operations', () => {
  it('alarms on every DLQ holding a message and on old source messages, notifying the alarm topic', () => {
    template.resourceCountIs('AWS::CloudWatch::Alarm', 6);
    const topic = { Ref: logicalId('AWS::SNS::Topic', 'AlarmTopic') };
    for (const prefix of ['FrontierDlq', 'ParseQueueDlq', 'LinksDlq']) {
      template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        MetricName: 'ApproximateNumberOfMessagesVisible',
        Dimensions: [
          { Name: 'QueueName', Value: { 'Fn::GetAtt': [logicalId('AWS::SQS::Queue', prefix), 'QueueName'] } },
        ],
        Threshold: 1,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        AlarmActions: [topic],
      });
    }
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'ApproximateAgeOfOldestMessage',
      Threshold: 900,
      AlarmActions: [topic],
    });
  });

  it('lets CloudWatch publish to the alarm topic, for this account’s alarms only, next to the TLS deny', () => {
    const topic = { Ref: logicalId('AWS::SNS::Topic', 'AlarmTopic') };
    const policies = Object.values(resources).filter((r) => r.Type === 'AWS::SNS::TopicPolicy');
    expect(policies).toHaveLength(1);
    const [policy] = policies as [Resource];
    const statements = (policy.Properties.PolicyDocument as { Statement: Array<Record<string, unknown>> })
      .Statement;
    const allow = statements.filter((s) => s.Effect === 'Allow');
    expect(allow).toEqual([
      {
        Sid: 'AllowCloudWatchAlarms',
        Effect: 'Allow',
        Principal: { Service: 'cloudwatch.amazonaws.com' },
        Action: 'sns:Publish',
        Resource: topic,
        Condition: {
          StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } },
          ArnLike: {
            'aws:SourceArn': {
              'Fn::Join': [
                '',
                [
                  'arn:',
                  { Ref: 'AWS::Partition' },
                  ':cloudwatch:',
                  { Ref: 'AWS::Region' },
                  ':',
                  { Ref: 'AWS::AccountId' },
                  ':alarm:*',
                ],
              ],
            },
          },
        },
      },
    ]);
    expect(statements.filter((s) => s.Effect === 'Deny')).toHaveLength(1);
  });

  it('outputs every queue URL, table, bucket and the alarm topic', () => {
    const outputs = Object.keys(template.findOutputs('*'));
    expect(outputs.sort()).toEqual(
      [
        'AlarmTopicArn',
        'BodiesBucketName',
        'CrawlsTableName',
        'EdgesBucketName',
        'FrontierDlqUrl',
        'FrontierQueueUrl',
        'LinksDlqUrl',
        'LinksQueueUrl',
        'ParseDlqUrl',
        'ParseQueueUrl',
        'RanksTableName',
        'RankingDatabase',
        'RankingQueryPolicyArn',
        'RankingWorkGroup',
        'UrlsTableName',
        'RecordTtlSeconds',
      ].sort(),
    );
    // The stage's TTL: 7 days in dev, 30 in prod.
    expect(template.findOutputs('RecordTtlSeconds').RecordTtlSeconds?.Value).toBe('604800');
    expect(synthCrawlerStack('prod').template.findOutputs('RecordTtlSeconds').RecordTtlSeconds?.Value).toBe(
      '2592000',
    );
  });

  it('builds a dashboard with queue, DLQ, function and page widgets', () => {
    const dashboards = template.findResources('AWS::CloudWatch::Dashboard');
    expect(Object.keys(dashboards)).toHaveLength(1);
    const body = JSON.stringify(stack.resolve(Object.values(dashboards)[0]?.Properties.DashboardBody));
    for (const metric of [
      'ApproximateNumberOfMessagesVisible',
      'ApproximateAgeOfOldestMessage',
      'Errors',
      'Throttles',
      'Duration',
      'pagesStored',
    ]) {
      expect(body).toContain(metric);
    }
  });
});

describe('stages and cdk-nag', () => {
  it('synthesizes with zero unacknowledged cdk-nag findings', () => {
    const assembly = app.synth();
    expect(assembly.stacks.map((s) => s.stackName)).toEqual(['Crawler-dev']);
  });

  it('fails synth when a construct breaks a cdk-nag rule without an acknowledgement', () => {
    const bad = new App();
    const s = new Stack(bad, 'Bad');
    new Queue(s, 'NoDlq');
    Validations.of(bad).addPlugins(new AwsSolutionsChecks(bad), new ServerlessChecks(bad));
    expect(() => bad.synth()).toThrow(/AwsSolutions-SQS3|not used as a dead-letter queue/);
  });

  it('retains data in prod and destroys it in dev', () => {
    const prod = synthCrawlerStack('prod').template.toJSON().Resources as Record<string, Resource>;
    const policies = (rs: Record<string, Resource>, type: string) =>
      Object.values(rs)
        .filter((r) => r.Type === type)
        .map((r) => r.DeletionPolicy);
    expect(new Set(policies(prod, 'AWS::DynamoDB::Table'))).toEqual(new Set(['Retain']));
    expect(new Set(policies(resources, 'AWS::DynamoDB::Table'))).toEqual(new Set(['Delete']));
    expect(new Set(policies(prod, 'AWS::S3::Bucket'))).toEqual(new Set(['Retain']));
    // dev empties its bucket before deleting it, or `cdk destroy` fails on stored bodies; prod never does.
    expect(Object.values(resources).filter((r) => r.Type === 'Custom::S3AutoDeleteObjects')).toHaveLength(2);
    expect(Object.values(prod).filter((r) => r.Type === 'Custom::S3AutoDeleteObjects')).toEqual([]);
  });

  it('passes a test allow-list from -c testAllowTargets to the crawler only, and the prod stage refuses it', () => {
    const env = (rs: Record<string, Resource>, prefix: string) => {
      const fn = Object.entries(rs).find(
        ([id, r]) => r.Type === 'AWS::Lambda::Function' && id.startsWith(prefix),
      );
      if (!fn) throw new Error(`no function ${prefix}`);
      return (fn[1].Properties.Environment as { Variables: Record<string, unknown> }).Variables;
    };
    const withList = synthCrawlerStack('dev', undefined, {
      testAllowTargets: '172.28.0.10:80',
    }).template.toJSON().Resources as Record<string, Resource>;
    expect(env(withList, 'FrontierConsumerFunction').CRAWLER_TEST_ALLOW_TARGETS).toBe('172.28.0.10:80');
    expect(env(withList, 'ParseQueueConsumerFunction').CRAWLER_TEST_ALLOW_TARGETS).toBeUndefined();
    expect(env(resources, 'FrontierConsumerFunction').CRAWLER_TEST_ALLOW_TARGETS).toBeUndefined();
    expect(() => synthCrawlerStack('prod', undefined, { testAllowTargets: '172.28.0.10:80' })).toThrow(
      /-c testAllowTargets is test-only .* the prod stage refuses it/,
    );
    expect(() => loadStageConfig({ stage: 'dev', testAllowTargets: 'fixture-site:80' })).toThrow(
      /ip:port pairs/,
    );
  });

  it('subscribes the alarm e-mail when one is given', () => {
    synthCrawlerStack('dev', 'ops@example.com').template.hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'email',
      Endpoint: 'ops@example.com',
    });
    template.resourceCountIs('AWS::SNS::Subscription', 0);
  });

  it('rejects an unknown stage and a malformed alarm e-mail with the fix', () => {
    expect(() => loadStageConfig({ stage: 'staging' })).toThrow(/Unknown stage "staging".*-c stage=<name>/);
    expect(() => loadStageConfig({ stage: 'dev', alarmEmail: 'not-an-email' })).toThrow(
      /alarmEmail "not-an-email"/,
    );
  });
});

describe('CrawlerStack ranking (the batch side)', () => {
  const ofType = (type: string) => Object.entries(resources).filter(([, r]) => r.Type === type);

  it('defines the edge log as a Glue table whose crawl_id partitions are projected from the key path', () => {
    const [table] = ofType('AWS::Glue::Table');
    expect(ofType('AWS::Glue::Table')).toHaveLength(1);
    const input = stack.resolve(table?.[1].Properties.TableInput) as Record<string, unknown> & {
      Parameters: Record<string, unknown>;
      StorageDescriptor: Record<string, unknown>;
    };
    expect(input.Name).toBe('edges');
    expect(input.PartitionKeys).toEqual([{ Name: 'crawl_id', Type: 'string' }]);
    expect(input.Parameters['projection.enabled']).toBe('true');
    expect(input.Parameters['projection.crawl_id.type']).toBe('injected');
    const template = JSON.stringify(input.Parameters['storage.location.template']);
    // Athena fills in the partition value where the template names it: a literal ${crawl_id}.
    expect(template).toContain(`/edges/crawl_id=${'$'}{crawl_id}/`);
    expect(template).toContain(logicalId('AWS::S3::Bucket', 'EdgesBucket'));
    expect(input.StorageDescriptor.Columns).toEqual([
      { Name: 'src', Type: 'string' },
      { Name: 'dst', Type: 'string' },
    ]);
    expect(input.StorageDescriptor.SerdeInfo).toEqual({
      SerializationLibrary: 'org.openx.data.jsonserde.JsonSerDe',
    });
  });

  it('runs queries in a workgroup that enforces encrypted results in the edges bucket and a scan cutoff', () => {
    const [wg] = ofType('AWS::Athena::WorkGroup');
    expect(ofType('AWS::Athena::WorkGroup')).toHaveLength(1);
    const config = stack.resolve(wg?.[1].Properties.WorkGroupConfiguration) as Record<string, unknown> & {
      ResultConfiguration: { OutputLocation: unknown; EncryptionConfiguration: unknown };
    };
    expect(config.EnforceWorkGroupConfiguration).toBe(true);
    expect(config.BytesScannedCutoffPerQuery).toBe(10 * 1024 ** 3);
    expect(config.ResultConfiguration.EncryptionConfiguration).toEqual({ EncryptionOption: 'SSE_S3' });
    expect(JSON.stringify(config.ResultConfiguration.OutputLocation)).toContain('/athena-results/');
    // Results expire, so the workgroup's output does not pile up.
    template.hasResourceProperties('AWS::S3::Bucket', {
      LifecycleConfiguration: {
        Rules: [Match.objectLike({ Prefix: 'athena-results/', ExpirationInDays: 7, Status: 'Enabled' })],
      },
    });
  });

  it('gives operators a query policy on this workgroup, table and bucket prefixes only', () => {
    const [policy] = ofType('AWS::IAM::ManagedPolicy');
    const document = stack.resolve(policy?.[1].Properties.PolicyDocument) as {
      Statement: Array<{ Action: string | string[]; Resource: unknown }>;
    };
    for (const s of document.Statement) {
      for (const r of asArray(s.Resource)) expect(JSON.stringify(r)).not.toMatch(/"\*"|:\*"/);
      for (const a of asArray(s.Action)) expect(a).not.toContain('*');
    }
    const actions = document.Statement.flatMap((s) => asArray(s.Action));
    expect(actions).toContain('athena:StartQueryExecution');
    expect(actions).not.toContain('s3:DeleteObject');
  });

  it('lets the ranker put edge log objects and write counts, and nothing else in S3', () => {
    const ranker = statements().filter(
      (s) => s.policy === logicalId('AWS::IAM::Policy', 'LinksConsumerRoleDefaultPolicy'),
    );
    const s3 = ranker.filter((s) => asArray(s.Action).some((a) => a.startsWith('s3:')));
    expect(s3.flatMap((s) => asArray(s.Action))).toEqual(['s3:PutObject']);
    expect(JSON.stringify(s3.map((s) => s.Resource))).toContain('/edges/*');
    const tables = ranker
      .filter((s) => asArray(s.Action).includes('dynamodb:UpdateItem'))
      .flatMap((s) => asArray(s.Resource))
      .map((r) => JSON.stringify(r));
    expect(tables).toEqual([
      JSON.stringify({ 'Fn::GetAtt': [logicalId('AWS::DynamoDB::Table', 'RanksTable'), 'Arn'] }),
    ]);
  });
});
