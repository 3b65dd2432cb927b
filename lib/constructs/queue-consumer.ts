import { type CfnElement, Duration, RemovalPolicy, Stack, Token, Validations } from 'aws-cdk-lib';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import { PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import {
  ApplicationLogLevel,
  Architecture,
  LoggingFormat,
  Runtime,
  SystemLogLevel,
  Tracing,
} from 'aws-cdk-lib/aws-lambda';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { IBucket } from 'aws-cdk-lib/aws-s3';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { KIT_ENV } from '../../functions/kit/env-names';
import type { QueueWithDlq } from './queue-with-dlq';

/**
 * The exec wrapper that sets `semiSpaceMb` and `heapGrowingPercent`: its path from the project root, and
 * its name in the bundle.
 */
const HEAP_WRAPPER = { source: 'functions/kit/heap-wrapper.sh', name: 'heap-wrapper.sh' };

/**
 * What `semiSpaceMb` and `heapGrowingPercent` add to a function, or undefined when neither is set: the
 * variables that point Lambda at the exec wrapper and give it the values, and the bundling hook that
 * copies the wrapper into the bundle.
 */
function heapWrapperOf(props: Pick<QueueConsumerProps, 'semiSpaceMb' | 'heapGrowingPercent'>) {
  const { semiSpaceMb, heapGrowingPercent } = props;
  if (semiSpaceMb === undefined && heapGrowingPercent === undefined) return undefined;
  return {
    environment: {
      AWS_LAMBDA_EXEC_WRAPPER: `/var/task/${HEAP_WRAPPER.name}`,
      ...(semiSpaceMb === undefined ? {} : { [KIT_ENV.semiSpaceMb]: String(semiSpaceMb) }),
      ...(heapGrowingPercent === undefined
        ? {}
        : { [KIT_ENV.heapGrowingPercent]: String(heapGrowingPercent) }),
    },
    commandHooks: {
      beforeBundling: () => [],
      beforeInstall: () => [],
      // The project root is the input directory, on this machine or in a bundling container.
      afterBundling: (inputDir: string, outputDir: string) => [
        `cp "${inputDir}/${HEAP_WRAPPER.source}" "${outputDir}/${HEAP_WRAPPER.name}"`,
      ],
    },
  };
}

/** A heap that may grow fivefold between full collections is as far as the kit lets a function go. */
const MAX_HEAP_GROWING_PERCENT = 400;

/** Lambda scales an SQS event source's pollers to at most this (its documented limit). */
const MAX_CONCURRENCY_LIMIT = 1000;

export interface QueueConsumerProps {
  /** Absolute path of the handler module. Anchor it to the calling file with `path.join(import.meta.dirname, ...)`. */
  readonly entry: string;
  /** The queue this function consumes, with its DLQ. */
  readonly source: QueueWithDlq;
  /** Powertools service name: the `service` key of every log line and the metrics dimension. */
  readonly serviceName: string;
  /**
   * Function timeout. The source queue's visibility timeout must be at least 6 × this.
   * @default Duration.seconds(30)
   */
  readonly timeout?: Duration;
  /**
   * @default 512
   */
  readonly memorySize?: number;
  /**
   * V8's semi-space, in MB, in place of the twentieth of `memorySize` that Lambda's Node.js bootstrap
   * gives it (a tenth of the memory for the young generation's two semi-spaces). When set, the bundle
   * carries an exec wrapper (functions/kit/heap-wrapper.sh, run through AWS_LAMBDA_EXEC_WRAPPER) that
   * rewrites the bootstrap's `--max-semi-space-size`. A function that keeps little on its heap while it
   * waits, such as one that fetches and compresses, can spend less on garbage collection with a small
   * young generation: V8 starts marking its old generation whenever the room left under its limit is
   * smaller than the young generation (README › Benchmarks, "Lambda's heap limits matter").
   * @default - Lambda's own, memorySize / 20
   */
  readonly semiSpaceMb?: number;
  /**
   * V8's `--heap-growing-percent`: after a full collection, the old generation may grow to (1 + this /
   * 100) times what the collection kept before V8 marks it again. Unset, V8 picks its own factor, and a
   * function whose young generation is large next to its old one (Lambda's bootstrap gives it a tenth of
   * the memory) has V8 start marking again almost at once, because it starts whenever the room under the
   * limit is smaller than the young generation. A larger factor trades peak memory for fewer full
   * collections (README › Benchmarks). Set through the same exec wrapper as `semiSpaceMb`.
   * @default - V8's own factor
   */
  readonly heapGrowingPercent?: number;
  /**
   * Records per invocation. FIFO sources take at most 10.
   * @default 10
   */
  readonly batchSize?: number;
  /**
   * Upper bound on concurrent invocations the event source mapping starts (2 to 1000).
   * @default 2
   */
  readonly maxConcurrency?: number;
  /**
   * How long to gather a batch. FIFO sources cannot have one.
   * @default - no batching window
   */
  readonly maxBatchingWindow?: Duration;
  /** @default - none besides the Powertools variables and the bindings */
  readonly environment?: Record<string, string>;
  /** @default RetentionDays.ONE_WEEK */
  readonly logRetention?: RetentionDays;
  /**
   * The function's log level: Powertools' (POWERTOOLS_LOG_LEVEL) and Lambda's application log level, kept
   * equal, since Powertools follows Lambda's when both are set.
   * @default 'INFO'
   */
  readonly logLevel?: 'TRACE' | 'DEBUG' | 'INFO' | 'WARN' | 'ERROR' | 'FATAL';
  /**
   * The level of Lambda's own log lines. At WARN its START, END and REPORT lines (about 340 bytes an
   * invocation, billed as log ingestion) are not written; Duration, errors and throttles are still
   * CloudWatch metrics, and timeouts and crashes still log. INFO brings them back: do so while sizing a
   * function's memory, since REPORT is where Lambda logs "Max Memory Used".
   * @default SystemLogLevel.WARN
   */
  readonly platformLogLevel?: SystemLogLevel;
  /** @default RemovalPolicy.DESTROY */
  readonly removalPolicy?: RemovalPolicy;
  /**
   * CloudWatch namespace of the function's Powertools metrics (POWERTOOLS_METRICS_NAMESPACE).
   * @default 'Pipeline'
   */
  readonly metricsNamespace?: string;
  /**
   * X-Ray tracing. Off by default: X-Ray bills each recorded trace ($5 per million), more than a page costs
   * the crawler in every other service together, and without an instrumented SDK a trace shows only the
   * invocation. Turn it on (Tracing.ACTIVE) for a stage being debugged.
   * @default Tracing.DISABLED
   */
  readonly tracing?: Tracing;
}

/**
 * A Lambda function fed by an SQS queue through an event source mapping (the managed consumer group).
 *
 * Defaults it applies:
 * - NodejsFunction on the newest Node.js runtime, arm64, esbuild-minified ESM with source maps;
 * - its own log group with retention, and a role that may write only to that log group;
 * - Powertools environment (service name, log level, metrics namespace);
 * - no X-Ray tracing unless asked for (see `tracing`);
 * - an SQS event source with ReportBatchItemFailures, so one bad record does not retry its batch-mates;
 * - send access to the source's DLQ, with its URL in DLQ_URL, so poison messages skip their retries.
 *
 * It refuses a source whose visibility timeout is under 6 × the function timeout, the margin AWS
 * recommends so that a retried invocation does not overlap a message that is still being processed.
 */
export class QueueConsumer extends Construct {
  /** The function timeout when none is given. */
  static readonly DEFAULT_TIMEOUT = Duration.seconds(30);

  /**
   * The least visibility timeout a source queue needs for a consumer: 6 × the function timeout, AWS's
   * margin, plus the batching window, during which records wait in the poller before the timeout starts.
   */
  static requiredVisibilitySeconds(timeout: Duration, maxBatchingWindow?: Duration): number {
    return timeout.toSeconds() * 6 + (maxBatchingWindow?.toSeconds() ?? 0);
  }

  public readonly function: NodejsFunction;
  public readonly role: Role;
  public readonly logGroup: LogGroup;
  public readonly eventSource: SqsEventSource;

  constructor(scope: Construct, id: string, props: QueueConsumerProps) {
    super(scope, id);
    const timeout = props.timeout ?? QueueConsumer.DEFAULT_TIMEOUT;
    const batchSize = props.batchSize ?? 10;
    const maxConcurrency = props.maxConcurrency ?? 2;
    const memorySize = props.memorySize ?? 512;
    validate(this, props, timeout, batchSize, maxConcurrency, memorySize);
    const heapWrapper = heapWrapperOf(props);
    const tracing = props.tracing ?? Tracing.DISABLED;
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.DESTROY;

    this.logGroup = new LogGroup(this, 'Logs', {
      retention: props.logRetention ?? RetentionDays.ONE_WEEK,
      removalPolicy,
    });
    // An own role instead of AWSLambdaBasicExecutionRole, whose logs grant covers every log group.
    this.role = new Role(this, 'Role', { assumedBy: new ServicePrincipal('lambda.amazonaws.com') });
    this.role.addToPolicy(
      new PolicyStatement({
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: [this.logGroup.logGroupArn],
      }),
    );

    this.function = new NodejsFunction(this, 'Function', {
      entry: props.entry,
      handler: 'handler',
      runtime: Runtime.NODEJS_24_X,
      architecture: Architecture.ARM_64,
      memorySize,
      timeout,
      role: this.role,
      logGroup: this.logGroup,
      tracing: tracing,
      loggingFormat: LoggingFormat.JSON,
      applicationLogLevelV2: ApplicationLogLevel[props.logLevel ?? 'INFO'],
      systemLogLevelV2: props.platformLogLevel ?? SystemLogLevel.WARN,
      environment: {
        POWERTOOLS_SERVICE_NAME: props.serviceName,
        POWERTOOLS_LOG_LEVEL: props.logLevel ?? 'INFO',
        POWERTOOLS_METRICS_NAMESPACE: props.metricsNamespace ?? 'Pipeline',
        NODE_OPTIONS: '--enable-source-maps',
        // The handler knows a receive is the source's last before the DLQ, and records an outcome then.
        [KIT_ENV.maxReceiveCount]: String(props.source.maxReceiveCount),
        // The handler may ask its queue for the visibility timeout; the event source's grant covers it.
        [KIT_ENV.sourceQueueUrl]: props.source.queue.queueUrl,
        ...heapWrapper?.environment,
        ...props.environment,
      },
      bundling: {
        ...(heapWrapper ? { commandHooks: heapWrapper.commandHooks } : {}),
        format: OutputFormat.ESM,
        minify: true,
        sourceMap: true,
        target: 'node24',
        mainFields: ['module', 'main'],
        metafile: true,
        // Some CommonJS dependencies call require(); ESM output needs it defined.
        banner: "import{createRequire as __cr}from'node:module';const require=__cr(import.meta.url);",
      },
    });

    this.eventSource = new SqsEventSource(props.source.queue, {
      batchSize,
      maxConcurrency,
      reportBatchItemFailures: true,
      maxBatchingWindow: props.maxBatchingWindow,
    });
    this.function.addEventSource(this.eventSource);
    // Poison messages are forwarded to the DLQ at once instead of burning maxReceiveCount retries.
    this.bindQueue(props.source.deadLetterQueue, KIT_ENV.dlqUrl);

    Validations.of(this).acknowledge(
      {
        id: 'Serverless-LambdaEventSourceMappingDestination',
        reason:
          'SQS event source mappings cannot have an on-failure destination; the queue redrive policy sends failures to the DLQ.',
      },
      {
        id: 'Serverless-LambdaDLQ',
        reason:
          'The function is only invoked synchronously by its SQS event source; failed messages go to the source queue DLQ.',
      },
      {
        id: 'Serverless-LambdaAsyncFailureDestination',
        reason: 'The function is never invoked asynchronously; the SQS redrive policy handles failures.',
      },
    );
    if (tracing === Tracing.DISABLED) {
      Validations.of(this).acknowledge({
        id: 'Serverless-LambdaTracing',
        reason:
          'Tracing is off by default: X-Ray bills $5 per million traces, above the cost of a message in every other service, and an uninstrumented SDK adds little to a trace. Set tracing: Tracing.ACTIVE to turn it on.',
      });
    } else {
      Validations.of(this).acknowledge(
        {
          id: 'AwsSolutions-IAM5[Resource::*]',
          reason: 'X-Ray PutTraceSegments and PutTelemetryRecords support no resource-level permissions.',
        },
        {
          id: 'Serverless-StarPermissions',
          reason:
            'Only the X-Ray actions use Resource "*", which X-Ray requires; every other grant names its resource.',
        },
      );
    }
  }

  /** Grant send (producer) access to a queue and put its URL in `envName`. */
  bindQueue(queue: IQueue, envName: string): this {
    queue.grantSendMessages(this.function);
    this.function.addEnvironment(envName, queue.queueUrl);
    return this;
  }

  /**
   * Grant item-level access to a table and put its name in `envName`.
   * 'r' allows reads; 'rw' adds writes and conditional updates. `partiql` also lets a 'rw' function run
   * single-item PartiQL statements of those kinds (batches of conditional writes in one
   * BatchExecuteStatement). Scans and table management are never granted.
   */
  bindTable(table: ITable, mode: 'r' | 'rw', envName: string, options: TableOptions = {}): this {
    const read = [
      'dynamodb:GetItem',
      'dynamodb:BatchGetItem',
      'dynamodb:Query',
      'dynamodb:ConditionCheckItem',
    ];
    const write = [
      'dynamodb:PutItem',
      'dynamodb:UpdateItem',
      'dynamodb:DeleteItem',
      'dynamodb:BatchWriteItem',
    ];
    const partiql = options.partiql ?? [];
    if (partiql.length > 0 && mode !== 'rw')
      throw new Error(`${this.node.path}: PartiQL writes on a table need mode 'rw', not '${mode}'`);
    const statements = { insert: 'dynamodb:PartiQLInsert', update: 'dynamodb:PartiQLUpdate' };
    table.grant(
      this.function,
      ...read,
      ...(mode === 'rw' ? write : []),
      ...partiql.map((kind) => statements[kind]),
    );
    this.function.addEnvironment(envName, table.tableName);
    return this;
  }

  /**
   * Grant object get/put under `prefix` of a bucket and put the bucket name in `envName`.
   * Object ARNs need a wildcard after the prefix; the prefix keeps it to this function's objects.
   */
  bindBucket(bucket: IBucket, mode: 'r' | 'w' | 'rw', envName: string, prefix: string): this {
    const actions = { r: ['s3:GetObject'], w: ['s3:PutObject'], rw: ['s3:GetObject', 's3:PutObject'] };
    this.role.addToPolicy(
      new PolicyStatement({
        actions: actions[mode],
        resources: [bucket.arnForObjects(`${prefix}*`)],
      }),
    );
    bucket.encryptionKey?.grantEncryptDecrypt(this.function);
    this.function.addEnvironment(envName, bucket.bucketName);
    Validations.of(this.role).acknowledge({
      id: `AwsSolutions-IAM5[Resource::<${Stack.of(bucket).getLogicalId(bucket.node.defaultChild as CfnElement)}.Arn>/${prefix}*]`,
      reason: `Object keys under ${prefix} are content hashes not known at deploy time; the grant stops at that prefix.`,
    });
    return this;
  }
}

/** More of a table a function may use (see QueueConsumer.bindTable). */
export interface TableOptions {
  /** The kinds of single-item PartiQL write the function runs. @default - none */
  readonly partiql?: ReadonlyArray<'insert' | 'update'>;
}

function validate(
  scope: Construct,
  props: QueueConsumerProps,
  timeout: Duration,
  batchSize: number,
  maxConcurrency: number,
  memory: number,
): void {
  if (props.source.fifo && props.maxBatchingWindow) {
    throw new Error(
      `${scope.node.path}: maxBatchingWindow (${props.maxBatchingWindow.toHumanString()}) is not allowed on a FIFO source; remove it.`,
    );
  }
  const visibility = props.source.visibilityTimeout;
  if (!visibility.isUnresolved() && !timeout.isUnresolved()) {
    const window = props.maxBatchingWindow?.toSeconds() ?? 0;
    const needed = QueueConsumer.requiredVisibilitySeconds(timeout, props.maxBatchingWindow);
    if (visibility.toSeconds() < needed) {
      throw new Error(
        `${scope.node.path}: visibilityTimeout (${visibility.toSeconds()}s) of the source queue must be at least 6 × the function timeout ` +
          `(${timeout.toSeconds()}s)${window ? ` plus the batching window (${window}s)` : ''} = ${needed}s. ` +
          `Raise the queue's visibilityTimeout or lower the function timeout.`,
      );
    }
  }
  if (!Token.isUnresolved(batchSize)) {
    const max = props.source.fifo ? 10 : 10_000;
    if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > max) {
      throw new Error(
        `${scope.node.path}: batchSize (${batchSize}) must be a whole number from 1 to ${max}${props.source.fifo ? ' for a FIFO source' : ''}.`,
      );
    }
    if (batchSize > 10 && !props.maxBatchingWindow) {
      throw new Error(
        `${scope.node.path}: batchSize (${batchSize}) above 10 needs a maxBatchingWindow; set one or lower batchSize.`,
      );
    }
  }
  const semi = props.semiSpaceMb;
  if (semi !== undefined && !Token.isUnresolved(semi) && !Token.isUnresolved(memory)) {
    if (!Number.isInteger(semi) || semi < 1 || semi > memory / 4) {
      throw new Error(
        `${scope.node.path}: semiSpaceMb (${semi}) must be a whole number of MB from 1 to a quarter of memorySize (${Math.floor(memory / 4)}).`,
      );
    }
  }
  const grow = props.heapGrowingPercent;
  if (
    grow !== undefined &&
    !Token.isUnresolved(grow) &&
    (!Number.isInteger(grow) || grow < 1 || grow > MAX_HEAP_GROWING_PERCENT)
  ) {
    throw new Error(
      `${scope.node.path}: heapGrowingPercent (${grow}) must be a whole number from 1 to ${MAX_HEAP_GROWING_PERCENT}.`,
    );
  }
  if (
    !Token.isUnresolved(maxConcurrency) &&
    (!Number.isInteger(maxConcurrency) || maxConcurrency < 2 || maxConcurrency > MAX_CONCURRENCY_LIMIT)
  ) {
    throw new Error(
      `${scope.node.path}: maxConcurrency (${maxConcurrency}) must be a whole number from 2 to ${MAX_CONCURRENCY_LIMIT}.`,
    );
  }
}
