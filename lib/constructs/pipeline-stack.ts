import { CfnOutput, Duration, RemovalPolicy, Stack, type StackProps, Validations } from 'aws-cdk-lib';
import { Dashboard, GraphWidget, Metric, TextWidget } from 'aws-cdk-lib/aws-cloudwatch';
import { AttributeType, BillingMode, Table, TableEncryption } from 'aws-cdk-lib/aws-dynamodb';
import { PolicyStatement, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { BlockPublicAccess, Bucket, BucketEncryption, type LifecycleRule } from 'aws-cdk-lib/aws-s3';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import type { Construct, IConstruct } from 'constructs';
import type { PipelineStage } from './pipeline-stage';

export interface PipelineStackProps extends StackProps {
  /** CloudWatch namespace of every stage's Powertools metrics, and of the dashboard's metric graphs. */
  readonly metricsNamespace: string;
  /** @default - no subscription; alarms still change state in CloudWatch */
  readonly alarmEmail?: string;
  /** What happens to queues, tables, buckets and log groups when the stack is deleted. @default RemovalPolicy.DESTROY */
  readonly removalPolicy?: RemovalPolicy;
  /** @default RetentionDays.ONE_WEEK */
  readonly logRetention?: RetentionDays;
  /** @default 'INFO' */
  readonly logLevel?: 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';
  /** Age of a source queue's oldest message that raises its backlog alarm. @default Duration.minutes(15) */
  readonly oldestMessageAlarmAge?: Duration;
  /**
   * How long records live (tables added with `timeToLive: true` expire them by `expiresAt`). Exported as the
   * RecordTtlSeconds output, so operator tools that write records give them the same lifetime.
   * @default Duration.days(7)
   */
  readonly recordTtl?: Duration;
}

export interface PipelineTableProps {
  readonly partitionKey: string;
  /** @default - no sort key */
  readonly sortKey?: string;
  /**
   * Expire items by an epoch-seconds attribute: `true` for `expiresAt`, or the attribute's name.
   * @default false
   */
  readonly timeToLive?: boolean | string;
}

export interface PipelineBucketProps {
  /** @default - none */
  readonly lifecycleRules?: LifecycleRule[];
}

/** The output name a resource gets from its construct id: the id without its type suffix, plus the kind. */
export function outputName(id: string, kind: 'QueueUrl' | 'DlqUrl' | 'TableName' | 'BucketName'): string {
  const suffix = { QueueUrl: 'Queue', DlqUrl: 'Queue', TableName: 'Table', BucketName: 'Bucket' }[kind];
  return `${id.endsWith(suffix) && id !== suffix ? id.slice(0, -suffix.length) : id}${kind}`;
}

/**
 * A stack that holds one message pipeline, with what every pipeline needs and nothing of any one pipeline:
 * - an alarm topic that CloudWatch may publish to (this account's alarms only), TLS-only, with its
 *   cdk-nag acknowledgements, and an optional e-mail subscription;
 * - defaults for its stages (metrics namespace, removal policy, log retention and level, alarm age);
 * - tables and buckets with the same defaults everywhere (on-demand, PITR, encryption, TLS-only);
 * - a CloudFormation output for every queue, DLQ, table and bucket, named by convention
 *   (`<Name>QueueUrl`, `<Name>DlqUrl`, `<Name>TableName`, `<Name>BucketName`), from which the sandbox,
 *   the CLI and the tests find them, plus `RecordTtlSeconds` and `AlarmTopicArn`;
 * - a dashboard with every stage's queue depth, oldest message age, DLQ depth, errors and duration, and
 *   room for the pipeline's own metric graphs (`addMetricGraph`).
 *
 * Stages are added with `new PipelineStage(stack, id, props)`, which takes its defaults from here.
 */
export class PipelineStack extends Stack {
  /** The PipelineStack a construct belongs to; throws, naming the construct, if it is outside one. */
  static pipelineOf(scope: IConstruct, path = scope.node.path): PipelineStack {
    const stack = Stack.of(scope);
    if (!(stack instanceof PipelineStack))
      throw new Error(`${path}: a PipelineStage must be created inside a PipelineStack`);
    return stack;
  }

  public readonly alarmTopic: Topic;
  public readonly metricsNamespace: string;
  public readonly removalPolicy: RemovalPolicy;
  public readonly logRetention: RetentionDays;
  public readonly logLevel: 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';
  public readonly oldestMessageAlarmAge: Duration;
  public readonly recordTtl: Duration;
  public readonly dashboard: Dashboard;
  public readonly stages: PipelineStage[] = [];
  private readonly graphs: Record<'depth' | 'age' | 'dlq' | 'errors' | 'duration', GraphWidget>;

  constructor(scope: Construct, id: string, props: PipelineStackProps) {
    super(scope, id, props);
    this.metricsNamespace = props.metricsNamespace;
    this.removalPolicy = props.removalPolicy ?? RemovalPolicy.DESTROY;
    this.logRetention = props.logRetention ?? RetentionDays.ONE_WEEK;
    this.logLevel = props.logLevel ?? 'INFO';
    this.oldestMessageAlarmAge = props.oldestMessageAlarmAge ?? Duration.minutes(15);
    this.recordTtl = props.recordTtl ?? Duration.days(7);
    if (!/^[A-Za-z0-9_./#:-]{1,255}$/.test(this.metricsNamespace))
      throw new Error(
        `${this.node.path}: metricsNamespace "${this.metricsNamespace}" must be 1 to 255 letters, digits or _ . / # : -`,
      );

    this.alarmTopic = new Topic(this, 'AlarmTopic', { enforceSSL: true });
    // enforceSSL gives the topic a resource policy holding only its Deny; once a topic has a policy,
    // CloudWatch may publish alarm state changes to it only with an explicit Allow, limited to this
    // account's alarms.
    this.alarmTopic.addToResourcePolicy(
      new PolicyStatement({
        sid: 'AllowCloudWatchAlarms',
        principals: [new ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['sns:Publish'],
        resources: [this.alarmTopic.topicArn],
        conditions: {
          StringEquals: { 'aws:SourceAccount': this.account },
          ArnLike: {
            'aws:SourceArn': `arn:${this.partition}:cloudwatch:${this.region}:${this.account}:alarm:*`,
          },
        },
      }),
    );
    if (props.alarmEmail) {
      this.alarmTopic.addSubscription(new EmailSubscription(props.alarmEmail));
      Validations.of(this.alarmTopic).acknowledge({
        id: 'Serverless-SNSRedrivePolicy',
        reason:
          'E-mail deliveries are retried by SNS; an undelivered alarm stays visible in CloudWatch, so a DLQ would add nothing.',
      });
    }
    Validations.of(this.alarmTopic).acknowledge({
      id: 'AwsSolutions-SNS2',
      reason:
        'Alarm notifications carry only alarm names and states; a KMS key would need a customer-managed key policy for CloudWatch at $1/month.',
    });

    const graph = (title: string) => new GraphWidget({ title, width: 8, height: 6 });
    this.graphs = {
      depth: graph('Queue depth (visible)'),
      age: graph('Oldest message age (s)'),
      dlq: graph('DLQ depth'),
      errors: graph('Function errors / throttles'),
      duration: graph('Function duration p90 (ms)'),
    };
    this.dashboard = new Dashboard(this, 'Dashboard', {
      defaultInterval: Duration.hours(3),
      widgets: [
        [new TextWidget({ markdown: `# ${id}\nRunbook: docs/runbook.md`, width: 24, height: 2 })],
        [this.graphs.depth, this.graphs.age, this.graphs.dlq],
        [this.graphs.errors, this.graphs.duration],
      ],
    });

    this.output('AlarmTopicArn', this.alarmTopic.topicArn);
    this.output('RecordTtlSeconds', String(this.recordTtl.toSeconds()));
  }

  /** An on-demand table with PITR and AWS-managed encryption, and its `<Name>TableName` output. */
  addTable(id: string, props: PipelineTableProps): Table {
    const table = new Table(this, id, {
      billingMode: BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      encryption: TableEncryption.AWS_MANAGED,
      removalPolicy: this.removalPolicy,
      partitionKey: { name: props.partitionKey, type: AttributeType.STRING },
      ...(props.sortKey ? { sortKey: { name: props.sortKey, type: AttributeType.STRING } } : {}),
      ...(props.timeToLive
        ? { timeToLiveAttribute: props.timeToLive === true ? 'expiresAt' : props.timeToLive }
        : {}),
    });
    this.output(outputName(id, 'TableName'), table.tableName);
    return table;
  }

  /**
   * A table for Powertools idempotency records (functions/kit/idempotency.ts): key `id`, expiring by
   * `expiration`, the attribute names Powertools writes.
   */
  addIdempotencyTable(id: string): Table {
    return this.addTable(id, { partitionKey: 'id', timeToLive: 'expiration' });
  }

  /** A private, encrypted, TLS-only bucket (emptied on delete when the stack destroys its data), and its output. */
  addBucket(id: string, props: PipelineBucketProps = {}): Bucket {
    const bucket = new Bucket(this, id, {
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      encryption: BucketEncryption.S3_MANAGED,
      lifecycleRules: props.lifecycleRules,
      removalPolicy: this.removalPolicy,
      // A stack whose data goes with it empties the bucket first, or `cdk destroy` fails on it.
      autoDeleteObjects: this.removalPolicy === RemovalPolicy.DESTROY,
    });
    this.output(outputName(id, 'BucketName'), bucket.bucketName);
    return bucket;
  }

  /** Called by PipelineStage: the stage's outputs and its dashboard lines. */
  registerStage(stage: PipelineStage): void {
    this.stages.push(stage);
    const label = stage.stageName;
    this.output(`${label}QueueUrl`, stage.queue.queueUrl);
    this.output(`${label}DlqUrl`, stage.deadLetterQueue.queueUrl);
    const fn = stage.consumer.function;
    this.graphs.depth.addLeftMetric(stage.queue.metricApproximateNumberOfMessagesVisible({ label }));
    this.graphs.age.addLeftMetric(stage.queue.metricApproximateAgeOfOldestMessage({ label }));
    this.graphs.dlq.addLeftMetric(
      stage.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ label: `${label} DLQ` }),
    );
    this.graphs.errors.addLeftMetric(fn.metricErrors({ label: `${label} errors` }));
    this.graphs.errors.addLeftMetric(fn.metricThrottles({ label: `${label} throttles` }));
    this.graphs.duration.addLeftMetric(fn.metricDuration({ statistic: 'p90', label }));
  }

  /** A dashboard graph of the pipeline's own metrics (Sum per minute), by name and Powertools service. */
  addMetricGraph(title: string, metrics: ReadonlyArray<{ name: string; service: string }>): GraphWidget {
    const widget = new GraphWidget({
      title,
      width: 8,
      height: 6,
      left: metrics.map(
        (m) =>
          new Metric({
            namespace: this.metricsNamespace,
            metricName: m.name,
            dimensionsMap: { service: m.service },
            statistic: 'Sum',
            period: Duration.minutes(1),
            label: m.name,
          }),
      ),
    });
    this.dashboard.addWidgets(widget);
    return widget;
  }

  /** A stack output, by name. */
  output(name: string, value: string): CfnOutput {
    return new CfnOutput(this, name, { value });
  }
}
