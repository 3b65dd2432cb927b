import path from 'node:path';
import { CfnOutput, Duration, RemovalPolicy, Stack, type StackProps, Validations } from 'aws-cdk-lib';
import { Dashboard, GraphWidget, type IMetric, Metric, TextWidget } from 'aws-cdk-lib/aws-cloudwatch';
import { AttributeType, BillingMode, Table, TableEncryption } from 'aws-cdk-lib/aws-dynamodb';
import { PolicyStatement, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { BlockPublicAccess, Bucket, BucketEncryption } from 'aws-cdk-lib/aws-s3';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import type { Construct } from 'constructs';
import { BODY_PREFIX, ENV } from '../../functions/shared/env-names';
import type { StageConfig } from '../config';
import { QueueConsumer } from '../constructs/queue-consumer';
import { QueueWithDlq } from '../constructs/queue-with-dlq';

export interface CrawlerStackProps extends StackProps {
  readonly config: StageConfig;
}

const functionsDir = path.join(import.meta.dirname, '..', '..', 'functions');

/** Collect → queue → parse → store, wired from the reusable constructs. No business logic lives here. */
export class CrawlerStack extends Stack {
  public readonly frontier: QueueWithDlq;
  public readonly parseQueue: QueueWithDlq;
  public readonly crawler: QueueConsumer;
  public readonly parser: QueueConsumer;

  constructor(scope: Construct, id: string, props: CrawlerStackProps) {
    super(scope, id, props);
    const { config } = props;
    const removalPolicy = config.removalPolicy;

    const alarmTopic = new Topic(this, 'AlarmTopic', { enforceSSL: true });
    // enforceSSL gives the topic a resource policy holding only its Deny; once a topic has a policy,
    // CloudWatch may publish alarm state changes to it only with an explicit Allow, limited to this
    // account's alarms.
    alarmTopic.addToResourcePolicy(
      new PolicyStatement({
        sid: 'AllowCloudWatchAlarms',
        principals: [new ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['sns:Publish'],
        resources: [alarmTopic.topicArn],
        conditions: {
          StringEquals: { 'aws:SourceAccount': this.account },
          ArnLike: {
            'aws:SourceArn': `arn:${this.partition}:cloudwatch:${this.region}:${this.account}:alarm:*`,
          },
        },
      }),
    );
    if (config.alarmEmail) {
      alarmTopic.addSubscription(new EmailSubscription(config.alarmEmail));
      Validations.of(alarmTopic).acknowledge({
        id: 'Serverless-SNSRedrivePolicy',
        reason:
          'E-mail deliveries are retried by SNS; an undelivered alarm stays visible in CloudWatch, so a DLQ would add nothing.',
      });
    }
    Validations.of(alarmTopic).acknowledge({
      id: 'AwsSolutions-SNS2',
      reason:
        'Alarm notifications carry only alarm names and states; a KMS key would need a customer-managed key policy for CloudWatch at $1/month.',
    });

    const crawlerTimeout = Duration.seconds(60);
    const parserTimeout = Duration.seconds(30);
    // The parse queue is standard, so its pollers may wait to fill a batch: fuller batches mean fewer
    // receives, deletes and invocations per page, and one link lookup for ten pages.
    const parserBatchingWindow = Duration.seconds(1);

    // Frontier: FIFO, group = URL host (partition key), dedup id = hash of the canonical URL.
    this.frontier = new QueueWithDlq(this, 'Frontier', {
      fifo: true,
      highThroughputFifo: true,
      visibilityTimeout: Duration.seconds(crawlerTimeout.toSeconds() * 6),
      alarmTopic,
      oldestMessageAlarmAge: config.oldestMessageAlarmAge,
      removalPolicy,
    });
    this.parseQueue = new QueueWithDlq(this, 'ParseQueue', {
      visibilityTimeout: Duration.seconds(parserTimeout.toSeconds() * 6 + parserBatchingWindow.toSeconds()),
      alarmTopic,
      oldestMessageAlarmAge: config.oldestMessageAlarmAge,
      removalPolicy,
    });

    const tableDefaults = {
      billingMode: BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      encryption: TableEncryption.AWS_MANAGED,
      removalPolicy,
    };
    const pages = new Table(this, 'PagesTable', {
      ...tableDefaults,
      partitionKey: { name: 'crawlId', type: AttributeType.STRING },
      sortKey: { name: 'url', type: AttributeType.STRING },
    });
    const urls = new Table(this, 'UrlsTable', {
      ...tableDefaults,
      partitionKey: { name: 'crawlId', type: AttributeType.STRING },
      sortKey: { name: 'url', type: AttributeType.STRING },
      timeToLiveAttribute: 'expiresAt',
    });
    const crawls = new Table(this, 'CrawlsTable', {
      ...tableDefaults,
      partitionKey: { name: 'crawlId', type: AttributeType.STRING },
      timeToLiveAttribute: 'expiresAt',
    });

    const bodies = new Bucket(this, 'BodiesBucket', {
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      encryption: BucketEncryption.S3_MANAGED,
      lifecycleRules: [{ prefix: BODY_PREFIX, expiration: config.bodyExpiration }],
      removalPolicy,
      // A stage whose data goes with the stack empties the bucket first, or `cdk destroy` fails on it.
      autoDeleteObjects: removalPolicy === RemovalPolicy.DESTROY,
    });
    Validations.of(bodies).acknowledge({
      id: 'AwsSolutions-S1',
      reason: `Bodies are transient claim checks that expire after ${config.bodyExpiration.toDays()} days and are read only by the parser role; CloudTrail data events cover audits when needed.`,
    });

    const commonEnv = {
      [ENV.userAgent]: config.crawl.userAgent,
      [ENV.maxBodyBytes]: String(config.crawl.maxBodyBytes),
      [ENV.fetchTimeoutMs]: String(config.crawl.fetchTimeoutMs),
      [ENV.recordTtlSeconds]: String(config.recordTtl.toSeconds()),
    };
    this.crawler = new QueueConsumer(this, 'Crawler', {
      entry: path.join(functionsDir, 'crawler', 'handler.ts'),
      source: this.frontier,
      serviceName: 'crawler',
      timeout: crawlerTimeout,
      // The crawler mostly waits on the network, and Lambda bills the wait by memory: 256 MB halves that
      // cost against the 512 MB default. The parser is CPU-bound, so it keeps the default.
      memorySize: 256,
      batchSize: 10,
      maxConcurrency: config.crawlerMaxConcurrency,
      logRetention: config.logRetention,
      logLevel: config.logLevel,
      removalPolicy,
      environment: {
        ...commonEnv,
        ...(config.testAllowTargets ? { [ENV.fetchAllowTargets]: config.testAllowTargets } : {}),
      },
    })
      .bindQueue(this.parseQueue.queue, ENV.parseQueueUrl)
      .bindTable(crawls, 'r', ENV.crawlsTable)
      .bindTable(urls, 'rw', ENV.urlsTable)
      .bindBucket(bodies, 'rw', ENV.bodiesBucket, BODY_PREFIX);

    this.parser = new QueueConsumer(this, 'Parser', {
      entry: path.join(functionsDir, 'parser', 'handler.ts'),
      source: this.parseQueue,
      serviceName: 'parser',
      timeout: parserTimeout,
      batchSize: 10,
      maxBatchingWindow: parserBatchingWindow,
      maxConcurrency: config.parserMaxConcurrency,
      logRetention: config.logRetention,
      logLevel: config.logLevel,
      removalPolicy,
      environment: commonEnv,
    })
      .bindQueue(this.frontier.queue, ENV.frontierQueueUrl)
      .bindTable(pages, 'rw', ENV.pagesTable)
      .bindTable(urls, 'rw', ENV.urlsTable)
      .bindTable(crawls, 'rw', ENV.crawlsTable)
      .bindBucket(bodies, 'r', ENV.bodiesBucket, BODY_PREFIX);

    new Dashboard(this, 'Dashboard', {
      defaultInterval: Duration.hours(3),
      widgets: [
        [
          new TextWidget({
            markdown: `# Crawler pipeline (${config.stage})\nRunbook: docs/runbook.md`,
            width: 24,
            height: 2,
          }),
        ],
        [
          graph('Queue depth (visible)', [
            this.frontier.queue.metricApproximateNumberOfMessagesVisible({ label: 'frontier' }),
            this.parseQueue.queue.metricApproximateNumberOfMessagesVisible({ label: 'parse' }),
          ]),
          graph('Oldest message age (s)', [
            this.frontier.queue.metricApproximateAgeOfOldestMessage({ label: 'frontier' }),
            this.parseQueue.queue.metricApproximateAgeOfOldestMessage({ label: 'parse' }),
          ]),
          graph('DLQ depth', [
            this.frontier.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ label: 'frontier DLQ' }),
            this.parseQueue.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ label: 'parse DLQ' }),
          ]),
        ],
        [
          graph('Function errors / throttles', [
            this.crawler.function.metricErrors({ label: 'crawler errors' }),
            this.parser.function.metricErrors({ label: 'parser errors' }),
            this.crawler.function.metricThrottles({ label: 'crawler throttles' }),
            this.parser.function.metricThrottles({ label: 'parser throttles' }),
          ]),
          graph('Function duration p90 (ms)', [
            this.crawler.function.metricDuration({ statistic: 'p90', label: 'crawler' }),
            this.parser.function.metricDuration({ statistic: 'p90', label: 'parser' }),
          ]),
          graph('Pages', [
            pipelineMetric('pagesFetched', 'crawler'),
            pipelineMetric('pagesStored', 'parser'),
            pipelineMetric('duplicatesSuppressed', 'parser'),
            pipelineMetric('blocked', 'crawler'),
          ]),
        ],
        [
          graph('Links enqueued / refused by the page budget', [
            pipelineMetric('linksEnqueued', 'parser'),
            pipelineMetric('linksOverBudget', 'parser'),
          ]),
        ],
      ],
    });

    const outputs: Record<string, string> = {
      FrontierQueueUrl: this.frontier.queue.queueUrl,
      FrontierDlqUrl: this.frontier.deadLetterQueue.queueUrl,
      ParseQueueUrl: this.parseQueue.queue.queueUrl,
      ParseDlqUrl: this.parseQueue.deadLetterQueue.queueUrl,
      PagesTableName: pages.tableName,
      UrlsTableName: urls.tableName,
      CrawlsTableName: crawls.tableName,
      BodiesBucketName: bodies.bucketName,
      AlarmTopicArn: alarmTopic.topicArn,
      // The stage's record lifetime, so the CLI gives the crawl and seed records it writes the same TTL.
      RecordTtlSeconds: String(config.recordTtl.toSeconds()),
    };
    for (const [name, value] of Object.entries(outputs)) new CfnOutput(this, name, { value });
  }
}

function graph(title: string, left: IMetric[]): GraphWidget {
  return new GraphWidget({ title, left, width: 8, height: 6 });
}

function pipelineMetric(metricName: string, service: string): Metric {
  return new Metric({
    namespace: 'CrawlerPipeline',
    metricName,
    dimensionsMap: { service },
    statistic: 'Sum',
    period: Duration.minutes(1),
    label: metricName,
  });
}
