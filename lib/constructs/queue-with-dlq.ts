import { Duration, RemovalPolicy, Token, Validations } from 'aws-cdk-lib';
import { Alarm, ComparisonOperator, type IMetric, TreatMissingData } from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import type { ITopic } from 'aws-cdk-lib/aws-sns';
import { DeduplicationScope, FifoThroughputLimit, Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';

export interface QueueWithDlqProps {
  /**
   * FIFO queue (and FIFO DLQ). Message groups give per-key ordering, the managed form of a Kafka partition key.
   * @default false
   */
  readonly fifo?: boolean;
  /**
   * FIFO high throughput: DeduplicationScope=messageGroup and FifoThroughputLimit=perMessageGroupId.
   * Only valid with `fifo`.
   * @default false
   */
  readonly highThroughputFifo?: boolean;
  /**
   * How long a received message stays invisible. A consumer needs at least 6 × its function timeout;
   * QueueConsumer checks that at synth.
   * @default Duration.seconds(30)
   */
  readonly visibilityTimeout?: Duration;
  /**
   * Receives before a message moves to the DLQ (the managed form of a RabbitMQ DLX after N retries).
   * @default 5
   */
  readonly maxReceiveCount?: number;
  /**
   * How long the source queue keeps a message.
   * @default Duration.days(4)
   */
  readonly retentionPeriod?: Duration;
  /**
   * Topic the "DLQ has messages" and "oldest message too old" alarms notify.
   * @default - alarms are created without actions
   */
  readonly alarmTopic?: ITopic;
  /**
   * Age of the oldest message in the source queue that raises the backlog alarm.
   * @default Duration.minutes(15)
   */
  readonly oldestMessageAlarmAge?: Duration;
  /**
   * @default RemovalPolicy.DESTROY
   */
  readonly removalPolicy?: RemovalPolicy;
}

/**
 * A source queue with its dead-letter queue and the two alarms every queue needs.
 *
 * Defaults it applies:
 * - a DLQ of the same type (FIFO for FIFO), kept 14 days, the SQS maximum;
 * - a redrive policy with maxReceiveCount 5;
 * - SQS-managed SSE and an enforceSSL policy on both queues;
 * - an alarm when the DLQ holds any message, and one when the oldest source message is older than 15 minutes.
 */
export class QueueWithDlq extends Construct {
  /** SQS keeps a DLQ message at most this long; redrive needs the time. */
  static readonly DLQ_RETENTION = Duration.days(14);

  public readonly queue: Queue;
  public readonly deadLetterQueue: Queue;
  public readonly fifo: boolean;
  public readonly visibilityTimeout: Duration;
  public readonly maxReceiveCount: number;
  public readonly dlqAlarm: Alarm;
  public readonly oldestMessageAlarm: Alarm;

  constructor(scope: Construct, id: string, props: QueueWithDlqProps = {}) {
    super(scope, id);
    this.fifo = props.fifo ?? false;
    this.visibilityTimeout = props.visibilityTimeout ?? Duration.seconds(30);
    this.maxReceiveCount = props.maxReceiveCount ?? 5;
    const retentionPeriod = props.retentionPeriod ?? Duration.days(4);
    const alarmAge = props.oldestMessageAlarmAge ?? Duration.minutes(15);
    validate(this, props, this.fifo, this.maxReceiveCount, this.visibilityTimeout, retentionPeriod);

    const common = {
      fifo: this.fifo ? true : undefined,
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      removalPolicy: props.removalPolicy ?? RemovalPolicy.DESTROY,
    };
    this.deadLetterQueue = new Queue(this, 'Dlq', { ...common, retentionPeriod: QueueWithDlq.DLQ_RETENTION });
    Validations.of(this.deadLetterQueue).acknowledge({
      id: 'Serverless-SQSRedrivePolicy',
      reason:
        'This queue is itself the dead-letter queue; its messages are redriven by an operator, not retried.',
    });
    this.queue = new Queue(this, 'Queue', {
      ...common,
      visibilityTimeout: this.visibilityTimeout,
      retentionPeriod,
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: this.maxReceiveCount },
      ...(props.highThroughputFifo
        ? {
            deduplicationScope: DeduplicationScope.MESSAGE_GROUP,
            fifoThroughputLimit: FifoThroughputLimit.PER_MESSAGE_GROUP_ID,
          }
        : {}),
    });

    this.dlqAlarm = this.alarm(
      'DlqNotEmptyAlarm',
      this.deadLetterQueue.metricApproximateNumberOfMessagesVisible(),
      {
        threshold: 1,
        description: `${id}: a message exhausted ${this.maxReceiveCount} receives or was rejected as invalid. See docs/runbook.md#dlq-not-empty.`,
      },
    );
    this.oldestMessageAlarm = this.alarm(
      'OldestMessageAlarm',
      this.queue.metricApproximateAgeOfOldestMessage(),
      {
        threshold: alarmAge.toSeconds(),
        description: `${id}: the oldest message waited over ${alarmAge.toHumanString()}; consumers are stuck or too slow. See docs/runbook.md#oldest-message-age.`,
      },
    );
    if (props.alarmTopic) {
      const action = new SnsAction(props.alarmTopic);
      this.dlqAlarm.addAlarmAction(action);
      this.oldestMessageAlarm.addAlarmAction(action);
    }
  }

  private alarm(id: string, metric: IMetric, opts: { threshold: number; description: string }): Alarm {
    return new Alarm(this, id, {
      metric,
      threshold: opts.threshold,
      evaluationPeriods: 1,
      comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: TreatMissingData.NOT_BREACHING,
      alarmDescription: opts.description,
    });
  }
}

function validate(
  scope: Construct,
  props: QueueWithDlqProps,
  fifo: boolean,
  maxReceiveCount: number,
  visibilityTimeout: Duration,
  retentionPeriod: Duration,
): void {
  if (props.highThroughputFifo && !fifo) {
    throw new Error(
      `${scope.node.path}: highThroughputFifo (true) needs fifo: true; a standard queue has no message groups.`,
    );
  }
  if (!Token.isUnresolved(maxReceiveCount) && (!Number.isInteger(maxReceiveCount) || maxReceiveCount < 1)) {
    throw new Error(
      `${scope.node.path}: maxReceiveCount (${maxReceiveCount}) must be a whole number of at least 1; 5 or more is recommended.`,
    );
  }
  if (!visibilityTimeout.isUnresolved() && visibilityTimeout.toSeconds() > 43_200) {
    throw new Error(
      `${scope.node.path}: visibilityTimeout (${visibilityTimeout.toHumanString()}) must be at most 12 hours, the SQS limit.`,
    );
  }
  if (
    !retentionPeriod.isUnresolved() &&
    retentionPeriod.toSeconds() > QueueWithDlq.DLQ_RETENTION.toSeconds()
  ) {
    throw new Error(
      `${scope.node.path}: retentionPeriod (${retentionPeriod.toHumanString()}) must be at most 14 days, the SQS limit.`,
    );
  }
}
