import { type ChildProcess, fork, type Serializable, spawn } from 'node:child_process';
import type { EventEmitter } from 'node:events';
import { createWriteStream, type WriteStream } from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  type Message,
  ReceiveMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { type Counts, mergeCounts } from './meter.mjs';

/** A function as the template describes it, resolved to local values. */
export interface FunctionSpec {
  readonly logicalId: string;
  readonly bundlePath: string;
  readonly handlerName: string;
  readonly timeoutMs: number;
  readonly memorySize: number;
  /** The Lambda runtime, e.g. `nodejs24.x`. */
  readonly runtime?: string;
  readonly environment: Record<string, string>;
}

export interface EventSourceSpec {
  readonly queueUrl: string;
  readonly queueArn: string;
  readonly batchSize: number;
  /** MaximumBatchingWindowInSeconds: how long a poller keeps gathering records before it invokes. */
  readonly batchingWindowSeconds?: number;
  readonly maxConcurrency: number;
  readonly reportBatchItemFailures: boolean;
}

export interface RunnerOptions {
  /**
   * Seconds a failed record stays invisible before its retry. Lambda leaves it for the queue's full
   * visibility timeout; locally that is minutes, so the sandbox shortens it.
   * @default - the queue's visibility timeout, as on AWS
   */
  readonly retryDelaySeconds?: number;
  /** Where the functions' stdout/stderr (Powertools JSON logs) go. */
  readonly logFile?: string;
  /** Called after every invocation, for progress displays and tests. */
  readonly onInvoke?: (stats: InvocationStats) => void;
  /** Count every AWS request the functions and the pollers make (the benchmark's cost model). */
  readonly meter?: Counts;
  /** Count this function's requests and its pollers' here too, to price one stage on its own. */
  readonly functionMeter?: Counts;
  /**
   * Long-poll wait of each receive. Lambda's pollers wait 20 s; locally 1 s keeps shutdown quick.
   * @default 1
   */
  readonly pollWaitSeconds?: number;
  /**
   * How each execution environment runs: a worker thread (quick to start, the default), or a child process,
   * which like a Lambda environment has its own heap, GC threads and thread pool, so its whole CPU and its
   * peak memory can be measured (the bench).
   * @default 'thread'
   */
  readonly isolation?: Isolation;
  /**
   * The Node binary of each process environment, e.g. one of the Lambda runtime's major version (see
   * tooling/lambda-node.mjs). @default this process's own
   */
  readonly functionNode?: string;
}

export type Isolation = 'thread' | 'process';

export interface InvocationStats extends InvocationUsage {
  readonly functionId: string;
  readonly records: number;
  /** Distinct FIFO message groups in the batch (1 for a standard queue). */
  readonly groups: number;
  /** Records per message group in the batch, by group id ('' for a standard queue). */
  readonly groupSizes: Readonly<Record<string, number>>;
  readonly failed: number;
  /** The function's configured memory, which Lambda bills GB-seconds by. */
  readonly memoryMb: number;
  /** Which of the function's execution environments (one per poller) ran it. */
  readonly container: number;
  readonly outcome: 'ok' | 'partial' | 'error' | 'timeout';
  readonly durationMs: number;
}

/** What an invocation reports about itself (see lambda-worker.mjs), and its INIT if it started one. */
export interface InvocationUsage {
  /** Busy time of the function's JS thread in this invocation (undefined after a timeout). */
  readonly activeMs?: number;
  /** CPU time of the function's JS thread in this invocation, where Linux reports it (undefined otherwise). */
  readonly cpuMs?: number;
  /**
   * CPU of the whole environment in this invocation, all its threads (GC, thread pool): with isolation
   * 'process' only.
   */
  readonly environmentCpuMs?: number;
  /** The same by kind of thread, where Node names its threads (22 and later): with isolation 'process' only. */
  readonly cpuByKindMs?: CpuByKind;
  /** The environment's peak resident memory so far, in MB: with isolation 'process' only. */
  readonly peakRssMb?: number;
  /**
   * A cold start's INIT: the time to start the environment and import the bundle, which this invocation
   * waited for (and which its durationMs includes). Lambda bills INIT since August 2025.
   */
  readonly initMs?: number;
}

/** An environment's CPU by kind of thread: JS, V8's helpers (GC), libuv's thread pool, the rest. */
export interface CpuByKind {
  readonly js: number;
  readonly gc: number;
  readonly pool: number;
  readonly other: number;
}

/** The messaging and lifetime of one environment, whether a worker thread or a child process. */
interface EnvironmentHandle {
  post(message: unknown): void;
  onMessage<M>(listener: (m: M) => void): () => void;
  onExit(listener: (code: number | null) => void): () => void;
  /** Tear down at once, as Lambda does past a timeout. */
  kill(): Promise<void>;
  /** Shut down between invocations, letting the environment exit by itself where it can. */
  stop(): Promise<void>;
  readonly stdout: NodeJS.ReadableStream;
  readonly stderr: NodeJS.ReadableStream;
}

/** Add a listener; returns its removal. */
function listen<A>(emitter: EventEmitter, event: string, listener: (arg: A) => void): () => void {
  emitter.on(event, listener);
  return () => emitter.off(event, listener);
}

const WORKER_SCRIPT = path.join(import.meta.dirname, 'lambda-worker.mjs');

function workerHandle(data: object, env: NodeJS.ProcessEnv): EnvironmentHandle {
  const worker = new Worker(WORKER_SCRIPT, { workerData: data, env, stdout: true, stderr: true });
  // An uncaught error ends the worker, and its 'exit' fails what it was doing; unheard, it would end this process.
  worker.on('error', () => undefined);
  return {
    post: (m) => worker.postMessage(m),
    onMessage: (l) => listen(worker, 'message', l),
    onExit: (l) => listen(worker, 'exit', l),
    kill: async () => void (await worker.terminate()),
    stop: async () => void (await worker.terminate()),
    stdout: worker.stdout,
    stderr: worker.stderr,
  };
}

/**
 * The V8 heap limits Lambda's Node.js bootstrap derives from the function's memory: a tenth for the young
 * generation (two semi-spaces), the rest for the old generation. V8 would otherwise size the heap from this
 * machine's memory, and collect garbage less often than the function will on Lambda. A function's exec
 * wrapper (QueueConsumer's `semiSpaceMb`) may change them, in a process environment as on Lambda.
 */
export function lambdaHeapFlags(memoryMb: number): string[] {
  const newSpace = Math.floor(memoryMb / 10);
  return [`--max-semi-space-size=${Math.floor(newSpace / 2)}`, `--max-old-space-size=${memoryMb - newSpace}`];
}

/**
 * SANDBOX_CPU_PROF=<dir> writes a V8 CPU profile of each process environment into <dir> when it stops (Node
 * refuses --cpu-prof in NODE_OPTIONS). For finding where a function's CPU goes; open it in Chrome DevTools.
 */
function profileFlags(): string[] {
  const dir = process.env.SANDBOX_CPU_PROF;
  return dir ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(dir)}`] : [];
}

/** Where Lambda puts a function's bundle; an exec wrapper shipped in it is found beside the bundle here. */
const TASK_ROOT = '/var/task/';

/**
 * The exec wrapper (AWS_LAMBDA_EXEC_WRAPPER) Lambda would start the function's runtime with, as a path on
 * this machine: one shipped in the bundle (/var/task/<file>) is that file beside the bundle. A wrapper from
 * elsewhere (a layer's /opt) is refused with the reason, since the sandbox does not run layers.
 */
export function execWrapperPath(wrapper: string | undefined, bundlePath: string): string | undefined {
  if (!wrapper) return undefined;
  if (!wrapper.startsWith(TASK_ROOT) || wrapper.includes('/../'))
    throw new Error(
      `AWS_LAMBDA_EXEC_WRAPPER is ${wrapper}: the sandbox runs only an exec wrapper shipped in the function's bundle (${TASK_ROOT}<file>)`,
    );
  return path.join(path.dirname(bundlePath), wrapper.slice(TASK_ROOT.length));
}

function processHandle(
  data: { memorySize: number; bundlePath: string },
  env: NodeJS.ProcessEnv,
  node: string | undefined,
): EnvironmentHandle {
  // No loader flags: the bundle is plain ESM, as on Lambda. Structured clone, as a worker's port uses.
  const execArgv = [...lambdaHeapFlags(data.memorySize), ...profileFlags()];
  const childEnv = { ...env, SANDBOX_LAMBDA_WORKER_DATA: JSON.stringify(data) };
  const wrapper = execWrapperPath(env.AWS_LAMBDA_EXEC_WRAPPER, data.bundlePath);
  // With a wrapper, as on Lambda: it is given the interpreter and its arguments, and execs them in its place.
  const child: ChildProcess = wrapper
    ? spawn(wrapper, [node ?? process.execPath, ...execArgv, WORKER_SCRIPT], {
        env: childEnv,
        stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
        serialization: 'advanced',
      })
    : fork(WORKER_SCRIPT, [], {
        env: childEnv,
        execArgv,
        ...(node ? { execPath: node } : {}),
        silent: true,
        serialization: 'advanced',
      });
  // A send to an environment that just died reports through its 'exit'; unheard, the 'error' would end this process.
  child.on('error', () => undefined);
  return {
    post: (m) => child.send(m as Serializable, () => undefined),
    onMessage: (l) => listen(child, 'message', l),
    onExit: (l) => listen(child, 'exit', l),
    kill: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await exited;
    },
    stop: async () => {
      // Closing the channel lets the environment exit on its own (and write a --cpu-prof profile).
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.disconnect();
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    },
    stdout: child.stdout as NodeJS.ReadableStream,
    stderr: child.stderr as NodeJS.ReadableStream,
  };
}

/**
 * One execution environment: a worker thread (or a child process, with isolation 'process') that keeps
 * its module state between invocations until it times out or dies.
 */
class ExecutionEnvironment {
  private handle?: EnvironmentHandle;
  private ready?: Promise<void>;
  private nextId = 0;
  constructor(
    private readonly fn: FunctionSpec,
    private readonly log: WriteStream | undefined,
    private readonly meter?: Counts,
    private readonly functionMeter?: Counts,
    private readonly isolation: Isolation = 'thread',
    private readonly node?: string,
  ) {}

  private start(): Promise<void> {
    const data = {
      bundlePath: this.fn.bundlePath,
      handlerName: this.fn.handlerName,
      functionName: this.fn.logicalId,
      memorySize: this.fn.memorySize,
      timeoutMs: this.fn.timeoutMs,
      meter: Boolean(this.meter),
    };
    const env = { ...process.env, ...this.fn.environment };
    const handle =
      this.isolation === 'process' ? processHandle(data, env, this.node) : workerHandle(data, env);
    if (this.log) {
      handle.stdout.pipe(this.log, { end: false });
      handle.stderr.pipe(this.log, { end: false });
    } else {
      handle.stdout.resume();
      handle.stderr.resume();
    }
    this.handle = handle;
    // An environment that ends between invocations is replaced by the next one, as on Lambda.
    handle.onExit(() => {
      if (this.handle === handle) this.handle = undefined;
    });
    return new Promise((resolve, reject) => {
      const offMessage = handle.onMessage((m: { type: string }) => {
        offMessage();
        offExit();
        if (m.type === 'ready') resolve();
        else reject(new Error('bad worker start'));
      });
      const offExit = handle.onExit((code) => {
        offMessage();
        this.handle = undefined;
        reject(new Error(`${this.fn.logicalId}: the environment exited with ${code} while starting`));
      });
    });
  }

  /**
   * Invoke with Lambda's timeout: past it the environment is torn down, as Lambda does. An environment that
   * dies mid-invocation fails the invocation at once, as Lambda's Runtime.ExitError does.
   */
  async invoke(
    event: SQSEvent,
  ): Promise<
    | { kind: 'result'; value: unknown; usage: InvocationUsage }
    | { kind: 'error'; message: string; usage: InvocationUsage }
    | { kind: 'timeout'; usage: InvocationUsage }
  > {
    let initMs: number | undefined;
    if (!this.handle) {
      const starting = Date.now();
      // A start that throws (a wrapper the sandbox cannot run) fails INIT like one that rejects.
      this.ready = new Promise<void>((resolve) => resolve(this.start()));
      try {
        await this.ready;
      } catch (error) {
        // An INIT failure fails the invocation (Lambda's Runtime.ImportModuleError, or the runtime exiting):
        // the batch returns to the queue, and the next invocation starts a fresh environment. (start() set
        // the handle; TypeScript still narrows it to undefined after the check above.)
        await (this.handle as EnvironmentHandle | undefined)?.kill();
        this.handle = undefined;
        return {
          kind: 'error',
          message: `INIT failed: ${(error as Error).message}`,
          usage: { initMs: Date.now() - starting },
        };
      }
      initMs = Date.now() - starting;
    }
    await this.ready;
    const handle = this.handle as EnvironmentHandle;
    const id = this.nextId++;
    return new Promise((resolve) => {
      const finish = () => {
        clearTimeout(timer);
        offMessage();
        offExit();
      };
      const timer = setTimeout(() => {
        finish();
        void handle.kill();
        this.handle = undefined;
        resolve({ kind: 'timeout', usage: { initMs } });
      }, this.fn.timeoutMs);
      const offExit = handle.onExit((code) => {
        finish();
        this.handle = undefined;
        resolve({
          kind: 'error',
          message: `Runtime exited with ${code} during the invocation`,
          usage: { initMs },
        });
      });
      const offMessage = handle.onMessage(
        (
          m: {
            type: string;
            id: number;
            result?: unknown;
            error?: { message: string };
            counts?: Counts;
          } & InvocationUsage,
        ) => {
          if (m.id !== id) return;
          if (this.meter && m.counts) mergeCounts(this.meter, m.counts);
          if (this.functionMeter && m.counts) mergeCounts(this.functionMeter, m.counts);
          finish();
          const usage: InvocationUsage = {
            activeMs: m.activeMs,
            cpuMs: m.cpuMs,
            environmentCpuMs: m.environmentCpuMs,
            cpuByKindMs: m.cpuByKindMs,
            peakRssMb: m.peakRssMb,
            initMs,
          };
          resolve(
            m.type === 'result'
              ? { kind: 'result', value: m.result, usage }
              : { kind: 'error', message: m.error?.message ?? '?', usage },
          );
        },
      );
      handle.post({ id, event });
    });
  }

  async stop(): Promise<void> {
    await this.handle?.stop();
    this.handle = undefined;
  }
}

/** The Lambda-shaped SQS record for a received message. */
export function toSqsRecord(m: Message, source: EventSourceSpec): SQSEvent['Records'][number] {
  const attributes = (m.Attributes ?? {}) as Record<string, string>;
  return {
    messageId: m.MessageId ?? '',
    receiptHandle: m.ReceiptHandle ?? '',
    body: m.Body ?? '',
    attributes: {
      ApproximateReceiveCount: attributes.ApproximateReceiveCount ?? '1',
      SentTimestamp: attributes.SentTimestamp ?? String(Date.now()),
      SenderId: attributes.SenderId ?? 'sandbox',
      ApproximateFirstReceiveTimestamp: attributes.ApproximateFirstReceiveTimestamp ?? String(Date.now()),
      ...(attributes.MessageGroupId ? { MessageGroupId: attributes.MessageGroupId } : {}),
      ...(attributes.MessageDeduplicationId
        ? { MessageDeduplicationId: attributes.MessageDeduplicationId }
        : {}),
      ...(attributes.SequenceNumber ? { SequenceNumber: attributes.SequenceNumber } : {}),
    },
    messageAttributes: Object.fromEntries(
      Object.entries(m.MessageAttributes ?? {}).map(([k, v]) => [
        k,
        {
          stringValue: v.StringValue,
          // Lambda hands a binary attribute to the function as base64.
          binaryValue: v.BinaryValue ? Buffer.from(v.BinaryValue).toString('base64') : undefined,
          stringListValues: [],
          binaryListValues: [],
          dataType: v.DataType ?? 'String',
        },
      ]),
    ),
    md5OfBody: m.MD5OfBody ?? '',
    eventSource: 'aws:sqs',
    eventSourceARN: source.queueArn,
    awsRegion: 'us-east-1',
  };
}

/** A function's peak memory over some invocations, against its configured memory. */
export interface PeakMemory {
  readonly peakMb: number;
  readonly memoryMb: number;
  /** Invocations that failed as a whole (an error, an exit, a timeout), not record by record. */
  readonly failed: number;
}

/**
 * Each function's peak memory over these invocations, by function name, where it was measured (isolation
 * 'process'), with its invocations that failed as a whole, measured or not (an environment that runs out of
 * memory dies before it can report); sorted by name. `line` says it the way Lambda's REPORT does:
 * "Crawler 158 of 256 MB, …".
 */
export function peakMemory(stats: readonly InvocationStats[]): {
  byFunction: Map<string, PeakMemory>;
  worstShare: number;
  line: string;
} {
  const all = new Map<string, PeakMemory & { measured: boolean }>();
  for (const i of [...stats].sort((a, b) => a.functionId.localeCompare(b.functionId))) {
    const fn = functionName(i.functionId);
    const p = all.get(fn);
    all.set(fn, {
      peakMb: Math.max(p?.peakMb ?? 0, i.peakRssMb ?? 0),
      memoryMb: i.memoryMb,
      failed: (p?.failed ?? 0) + (i.outcome === 'error' || i.outcome === 'timeout' ? 1 : 0),
      measured: (p?.measured ?? false) || i.peakRssMb !== undefined,
    });
  }
  const byFunction = new Map<string, PeakMemory>();
  for (const [fn, { measured, ...p }] of all) if (measured || p.failed > 0) byFunction.set(fn, p);
  const peaks = [...byFunction.values()];
  return {
    byFunction,
    worstShare: peaks.length ? Math.max(...peaks.map((p) => p.peakMb / p.memoryMb)) : 0,
    line: [...byFunction.entries()]
      .map(
        ([fn, p]) =>
          `${fn} ${Math.round(p.peakMb)} of ${p.memoryMb} MB${p.failed ? ` (${p.failed} failed invocations)` : ''}`,
      )
      .join(', '),
  };
}

/** A function's name without CDK's logical-id suffix: `FrontierConsumerFunction2C499DFA` → `FrontierConsumer`. */
export const functionName = (logicalId: string): string => logicalId.replace(/Function[0-9A-F]{8}$/, '');

/**
 * A local event source mapping: up to MaximumConcurrency pollers, each with its own execution environment,
 * receive batches of up to BatchSize, invoke the function, and delete what succeeded. With
 * ReportBatchItemFailures only the reported records stay; a thrown error or a timeout leaves the whole batch.
 */
export class EventSourceRunner {
  private running = false;
  private readonly abort = new AbortController();
  private loops: Promise<void>[] = [];
  private readonly envs: ExecutionEnvironment[] = [];
  private inFlight = 0;

  constructor(
    private readonly sqs: SQSClient,
    private readonly fn: FunctionSpec,
    private readonly source: EventSourceSpec,
    private readonly options: RunnerOptions & { log?: WriteStream } = {},
  ) {}

  /** "Crawler ← Frontier…fifo (batch 10, up to 2 at once)", for the start-up report. */
  describe(): string {
    const fn = functionName(this.fn.logicalId);
    const queue = this.source.queueUrl.split('/').pop() ?? this.source.queueUrl;
    return `${fn} ← ${queue} (batch ${this.source.batchSize}, up to ${this.source.maxConcurrency} at once)`;
  }

  /** True while any poller is inside an invocation. */
  get busy(): boolean {
    return this.inFlight > 0;
  }

  start(): void {
    this.running = true;
    for (let i = 0; i < this.source.maxConcurrency; i++) {
      const env = new ExecutionEnvironment(
        this.fn,
        this.options.log,
        this.options.meter,
        this.options.functionMeter,
        this.options.isolation,
        this.options.functionNode,
      );
      this.envs.push(env);
      this.loops.push(this.poll(env, i));
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    this.abort.abort();
    await Promise.all(this.loops);
    await Promise.all(this.envs.map((e) => e.stop()));
  }

  private async receive(max: number, waitSeconds: number): Promise<Message[]> {
    const out = await this.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: this.source.queueUrl,
        MaxNumberOfMessages: Math.min(max, 10),
        WaitTimeSeconds: waitSeconds,
        MessageSystemAttributeNames: ['All'],
        MessageAttributeNames: ['All'],
      }),
      { abortSignal: this.abort.signal },
    );
    return out.Messages ?? [];
  }

  /**
   * One batch: a long poll, then, with a batching window, more receives until the batch is full or the
   * window has passed since the first record arrived.
   */
  private async gather(): Promise<Message[]> {
    const { batchSize, batchingWindowSeconds = 0 } = this.source;
    const messages = await this.receive(batchSize, this.options.pollWaitSeconds ?? 1);
    if (messages.length === 0 || batchingWindowSeconds <= 0) return messages;
    const deadline = Date.now() + batchingWindowSeconds * 1000;
    while (this.running && messages.length < batchSize && Date.now() < deadline) {
      const wait = Math.min(20, Math.ceil((deadline - Date.now()) / 1000));
      messages.push(...(await this.receive(batchSize - messages.length, wait)));
    }
    return messages;
  }

  private async poll(env: ExecutionEnvironment, container: number): Promise<void> {
    while (this.running) {
      let messages: Message[];
      try {
        messages = await this.gather();
      } catch (error) {
        if (!this.running) return;
        process.stderr.write(
          `sandbox: receive from ${this.source.queueUrl} failed: ${(error as Error).message}\n`,
        );
        await new Promise((r) => setTimeout(r, 500));
        continue;
      }
      if (messages.length === 0) continue;
      this.inFlight++;
      try {
        await this.invokeBatch(env, container, messages);
      } finally {
        this.inFlight--;
      }
    }
  }

  private async invokeBatch(
    env: ExecutionEnvironment,
    container: number,
    messages: Message[],
  ): Promise<void> {
    const started = Date.now();
    const event: SQSEvent = { Records: messages.map((m) => toSqsRecord(m, this.source)) };
    const result = await env.invoke(event);
    let failedIds = new Set<string>();
    let outcome: InvocationStats['outcome'] = 'ok';
    if (result.kind === 'result') {
      const response = result.value as SQSBatchResponse | undefined;
      if (this.source.reportBatchItemFailures && response?.batchItemFailures?.length) {
        failedIds = new Set(response.batchItemFailures.map((f) => f.itemIdentifier));
        outcome = 'partial';
      }
    } else {
      failedIds = new Set(messages.map((m) => m.MessageId ?? ''));
      outcome = result.kind;
      if (result.kind === 'error')
        process.stderr.write(`sandbox: ${this.fn.logicalId} threw: ${result.message}\n`);
    }
    const done = messages.filter((m) => !failedIds.has(m.MessageId ?? ''));
    const failed = messages.filter((m) => failedIds.has(m.MessageId ?? ''));
    // SQS batch calls take at most 10 entries.
    for (let i = 0; i < done.length; i += 10) {
      await this.sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: this.source.queueUrl,
          Entries: done.slice(i, i + 10).map((m, j) => ({ Id: String(j), ReceiptHandle: m.ReceiptHandle })),
        }),
      );
    }
    const retryDelay = this.options.retryDelaySeconds;
    for (let i = 0; retryDelay !== undefined && i < failed.length; i += 10) {
      await this.sqs.send(
        new ChangeMessageVisibilityBatchCommand({
          QueueUrl: this.source.queueUrl,
          Entries: failed.slice(i, i + 10).map((m, j) => ({
            Id: String(j),
            ReceiptHandle: m.ReceiptHandle,
            VisibilityTimeout: retryDelay,
          })),
        }),
      );
    }
    const groupSizes: Record<string, number> = {};
    for (const m of messages) {
      const id = m.Attributes?.MessageGroupId ?? '';
      groupSizes[id] = (groupSizes[id] ?? 0) + 1;
    }
    this.options.onInvoke?.({
      functionId: this.fn.logicalId,
      records: messages.length,
      groups: Object.keys(groupSizes).length,
      groupSizes,
      failed: failed.length,
      memoryMb: this.fn.memorySize,
      container,
      outcome,
      durationMs: Date.now() - started,
      ...result.usage,
    });
  }
}

export function openLog(file: string | undefined): WriteStream | undefined {
  if (!file) return undefined;
  const log = createWriteStream(file, { flags: 'a' });
  // Every worker pipes its stdout and stderr here: two of each listener per worker, and a stack has many.
  log.setMaxListeners(0);
  return log;
}
