import { Duration } from 'aws-cdk-lib';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import type { IBucket } from 'aws-cdk-lib/aws-s3';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';
import { outputName, PipelineStack } from './pipeline-stack';
import { QueueConsumer, type QueueConsumerProps, type TableOptions } from './queue-consumer';
import { QueueWithDlq, type QueueWithDlqProps } from './queue-with-dlq';

export interface PipelineStageProps
  extends Omit<QueueConsumerProps, 'source' | 'metricsNamespace'>,
    Omit<QueueWithDlqProps, 'alarmTopic'> {
  /**
   * Name of the stage's queue in outputs and operator tools (`<name>QueueUrl`, `npm run cli -- dlq <name>`).
   * @default - the construct id without a trailing "Queue"
   */
  readonly name?: string;
}

/**
 * One stage of a pipeline: a source queue with its DLQ and alarms (it is a QueueWithDlq), and the Lambda
 * consumer its event source mapping feeds. Defaults come from the enclosing PipelineStack: alarm topic,
 * metrics namespace, removal policy, log retention and level, backlog alarm age. Its queue and DLQ are
 * exported as stack outputs and drawn on the stack's dashboard.
 *
 * The visibility timeout defaults to what the consumer needs: 6 × its timeout plus its batching window.
 * `bindQueue`, `bindTable` and `bindBucket` grant the consumer access and pass the name in an environment
 * variable, and return the stage, so a stage reads as one statement.
 */
export class PipelineStage extends QueueWithDlq {
  public readonly consumer: QueueConsumer;
  public readonly stageName: string;

  constructor(scope: Construct, id: string, props: PipelineStageProps) {
    const pipeline = PipelineStack.pipelineOf(scope, `${scope.node.path}/${id}`);
    const timeout = props.timeout ?? QueueConsumer.DEFAULT_TIMEOUT;
    super(scope, id, {
      ...props,
      visibilityTimeout:
        props.visibilityTimeout ??
        Duration.seconds(QueueConsumer.requiredVisibilitySeconds(timeout, props.maxBatchingWindow)),
      alarmTopic: pipeline.alarmTopic,
      oldestMessageAlarmAge: props.oldestMessageAlarmAge ?? pipeline.oldestMessageAlarmAge,
      removalPolicy: props.removalPolicy ?? pipeline.removalPolicy,
    });
    this.stageName = props.name ?? outputName(id, 'QueueUrl').replace(/QueueUrl$/, '');
    this.consumer = new QueueConsumer(this, 'Consumer', {
      ...props,
      source: this,
      timeout,
      metricsNamespace: pipeline.metricsNamespace,
      logRetention: props.logRetention ?? pipeline.logRetention,
      logLevel: props.logLevel ?? pipeline.logLevel,
      removalPolicy: props.removalPolicy ?? pipeline.removalPolicy,
    });
    pipeline.registerStage(this);
  }

  /** Let the consumer send to `queue` (the next stage) and pass its URL in `envName`. */
  bindQueue(queue: IQueue, envName: string): this {
    this.consumer.bindQueue(queue, envName);
    return this;
  }

  /**
   * Let the consumer read ('r') or read and write ('rw') items of `table`, with the single-item PartiQL
   * writes `options.partiql` names, and pass its name in `envName`.
   */
  bindTable(table: ITable, mode: 'r' | 'rw', envName: string, options: TableOptions = {}): this {
    this.consumer.bindTable(table, mode, envName, options);
    return this;
  }

  /**
   * Let the consumer get ('r'), put ('w') or get and put ('rw') objects under `prefix`, and pass the bucket
   * name in `envName`.
   */
  bindBucket(bucket: IBucket, mode: 'r' | 'w' | 'rw', envName: string, prefix: string): this {
    this.consumer.bindBucket(bucket, mode, envName, prefix);
    return this;
  }
}
