import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { makeTarget, type Target } from '../tooling/target';
import { type Emulators, LOCAL_CREDENTIALS, LOCAL_REGION, startEmulators } from './emulators';
import { type Counts, meterClient } from './meter.mjs';
import {
  type CfnTemplate,
  localClients,
  type Provisioned,
  provision,
  readTemplate,
  resolveValue,
} from './provision';
import {
  EventSourceRunner,
  type FunctionSpec,
  type InvocationStats,
  type Isolation,
  openLog,
} from './runner';

export const PROJECT_ROOT = path.join(import.meta.dirname, '..');
export const CDK_OUT = path.join(PROJECT_ROOT, 'cdk.out');
export const DEFAULT_STACK = 'Crawler-dev';

export interface SandboxOptions<O extends string = never> {
  /** Any stack of this app built on PipelineStack. @default 'Crawler-dev' */
  readonly stackName?: string;
  /** Outputs the caller needs; a template without them is refused, naming them. @default - none */
  readonly outputs?: readonly O[];
  /**
   * 'always' re-synthesizes (npm start); 'if-stale' reuses cdk.out unless it is missing or older than the
   * code it was built from (lib/, functions/, bin/, cdk.json), and then says which file made it stale.
   * @default 'if-stale'
   */
  readonly synth?: 'always' | 'if-stale';
  /** Start the event-source runners. Tests that drive a handler themselves turn this off. @default true */
  readonly runFunctions?: boolean;
  /** Extra environment for every function (e.g. the test-only loopback allow-list). */
  readonly functionEnv?: Record<string, string>;
  /** Source queues' visibility timeout in seconds. @default - the template's */
  readonly visibilityTimeoutSeconds?: number;
  /** Delay before a failed record is retried. @default - the queue's visibility timeout */
  readonly retryDelaySeconds?: number;
  /** Override a function's Timeout (ms), by logical-id prefix, e.g. { FrontierConsumer: 5000 }. */
  readonly timeoutOverrides?: Record<string, number>;
  readonly onInvoke?: (stats: InvocationStats) => void;
  /** Folder for function logs. @default .sandbox/ */
  readonly logDir?: string;
  /** Told each start-up step as it completes (npm start prints them), with the ms it took. */
  readonly onStep?: (step: string, ms: number) => void;
  /** Count AWS requests of functions and pollers into this object (npm run bench). */
  readonly meter?: Counts;
  /** Also count each function's requests and its pollers', by function logical id (npm run bench). */
  readonly meterByFunction?: Record<string, Counts>;
  /** Receive long-poll wait in seconds; 20 matches Lambda's pollers. @default 1 */
  readonly pollWaitSeconds?: number;
  /** Run each execution environment as a worker thread or a child process (see RunnerOptions). */
  readonly isolation?: Isolation;
  /**
   * With isolation 'process': the Node binary the functions run on (see RunnerOptions), or a function of
   * each function's Lambda runtime (`nodejs24.x`) that picks one (undefined: this process's Node).
   */
  readonly functionNode?: string | ((runtime: string | undefined) => string | undefined);
}

export interface Sandbox<O extends string = never> {
  readonly target: Target<O>;
  readonly emulators: Emulators;
  readonly provisioned: Provisioned;
  readonly functions: FunctionSpec[];
  readonly logFile: string;
  /** Base environment a handler needs to run against these emulators (for in-process tests). */
  functionEnvironment(logicalIdPrefix: string): Record<string, string>;
  stop(): Promise<void>;
}

/** Folders and files a synthesized template is built from. */
const SOURCES = ['lib', 'functions', 'bin', 'cdk.json'];

/** The newest source file under `root` and its time, walking SOURCES. */
function newestSource(root: string): { file: string; mtimeMs: number } | undefined {
  let newest: { file: string; mtimeMs: number } | undefined;
  const visit = (p: string) => {
    const st = statSync(p, { throwIfNoEntry: false });
    if (!st) return;
    if (st.isDirectory()) for (const e of readdirSync(p)) visit(path.join(p, e));
    else if (!newest || st.mtimeMs > newest.mtimeMs) newest = { file: p, mtimeMs: st.mtimeMs };
  };
  for (const s of SOURCES) visit(path.join(root, s));
  return newest;
}

/** Why cdk.out cannot be reused for `stackName`, or undefined when it is up to date. */
export function staleReason(stackName: string, root = PROJECT_ROOT): string | undefined {
  const template = statSync(path.join(root, 'cdk.out', `${stackName}.template.json`), {
    throwIfNoEntry: false,
  });
  if (!template) return `cdk.out has no ${stackName} template yet`;
  const newest = newestSource(root);
  if (newest && newest.mtimeMs > template.mtimeMs)
    return `${path.relative(root, newest.file)} changed after the last synth`;
  return undefined;
}

/**
 * Synthesize when asked to or when cdk.out is stale, one process at a time: test files start sandboxes side
 * by side, and two synths writing cdk.out at once would leave it half-written for both.
 */
async function ensureSynthesized(
  stackName: string,
  always: boolean,
  step: (what: string) => void,
): Promise<void> {
  const lock = path.join(PROJECT_ROOT, '.sandbox', 'synth.lock');
  mkdirSync(path.dirname(lock), { recursive: true });
  for (const started = Date.now(); ; ) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      // A lock older than the slowest synth was left by a process that died.
      const age = Date.now() - (statSync(lock, { throwIfNoEntry: false })?.mtimeMs ?? 0);
      if (age > 180_000) rmSync(lock, { recursive: true, force: true });
      if (Date.now() - started > 300_000)
        throw new Error(`waited 5 minutes for ${lock}; remove it if no synth runs`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  try {
    const reason = always ? undefined : staleReason(stackName);
    if (!always && !reason) return;
    synthesize();
    step(
      reason
        ? `re-synthesized ${stackName}: ${reason}`
        : `synthesized the app and bundled its functions (cdk synth)`,
    );
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

export function synthesize(): void {
  const result = spawnSync('npx', ['cdk', 'synth', '--quiet', '-c', 'stage=dev'], {
    cwd: PROJECT_ROOT,
    encoding: 'utf8',
    env: { ...process.env, CDK_DISABLE_VERSION_CHECK: '1' },
  });
  if (result.status !== 0) throw new Error(`cdk synth failed:\n${result.stderr.slice(-2000)}`);
}

function functionSpecs(
  template: CfnTemplate,
  p: Provisioned,
  base: Record<string, string>,
  opts: SandboxOptions<string>,
): FunctionSpec[] {
  return Object.entries(template.Resources)
    .filter(([, r]) => r.Type === 'AWS::Lambda::Function')
    .map(([id, r]) => {
      const props = r.Properties ?? {};
      const assetPath = r.Metadata?.['aws:asset:path'];
      if (typeof assetPath !== 'string')
        throw new Error(`function ${id} has no asset path; was it synthesized with bundling?`);
      const [file, handlerName] = String(props.Handler ?? 'index.handler').split('.') as [string, string];
      const vars = ((props.Environment as { Variables?: Record<string, unknown> } | undefined)?.Variables ??
        {}) as Record<string, unknown>;
      const environment: Record<string, string> = {};
      for (const [k, v] of Object.entries(vars)) environment[k] = resolveValue(v, p.resources);
      const override = Object.entries(opts.timeoutOverrides ?? {}).find(([prefix]) =>
        id.startsWith(prefix),
      )?.[1];
      return {
        logicalId: id,
        bundlePath: path.join(CDK_OUT, assetPath, `${file}.mjs`),
        handlerName,
        timeoutMs: override ?? Number(props.Timeout ?? 3) * 1000,
        memorySize: Number(props.MemorySize ?? 128),
        ...(typeof props.Runtime === 'string' ? { runtime: props.Runtime } : {}),
        environment: { ...environment, ...base, AWS_LAMBDA_FUNCTION_NAME: id, ...opts.functionEnv },
      };
    });
}

/**
 * The embedded local runtime: emulators on loopback, the synthesized template provisioned into them, and a
 * local event source mapping per AWS::Lambda::EventSourceMapping running the bundled function code.
 */
export async function startSandbox<O extends string = never>(
  opts: SandboxOptions<O> = {},
): Promise<Sandbox<O>> {
  const stackName = opts.stackName ?? DEFAULT_STACK;
  let since = Date.now();
  const step = (what: string) => {
    opts.onStep?.(what, Date.now() - since);
    since = Date.now();
  };
  // Without an onStep listener (tests), a re-synth is still said, on stderr: a stale build is never silent.
  await ensureSynthesized(stackName, opts.synth === 'always', (what) => {
    if (opts.onStep) step(what);
    else console.error(`sandbox: ${what}`);
  });
  const template = readTemplate(CDK_OUT, stackName);
  const emulators = await startEmulators(step);
  try {
    const provisioned = await provision(template, emulators, {
      visibilityTimeoutSeconds: opts.visibilityTimeoutSeconds,
    });
    const made = (type: string) => Object.values(template.Resources).filter((r) => r.Type === type).length;
    step(
      `created ${made('AWS::SQS::Queue')} queues, ${made('AWS::DynamoDB::Table')} tables and ${made('AWS::S3::Bucket')} bucket(s) from the template`,
    );
    const base: Record<string, string> = {
      // The SDK's Node 20 notice would be the only non-JSON lines of the function logs (see tooling/quiet-sdk.ts).
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      AWS_REGION: LOCAL_REGION,
      AWS_DEFAULT_REGION: LOCAL_REGION,
      AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
      AWS_ENDPOINT_URL_SQS: emulators.sqsEndpoint,
      AWS_ENDPOINT_URL_S3: emulators.s3Endpoint,
      AWS_ENDPOINT_URL_DYNAMODB: emulators.dynamodbEndpoint,
    };
    const functions = functionSpecs(template, provisioned, base, opts);
    const logDir = opts.logDir ?? path.join(PROJECT_ROOT, '.sandbox');
    mkdirSync(logDir, { recursive: true });
    const logFile = path.join(logDir, `functions-${process.pid}.log`);
    const log = openLog(logFile);
    const clients = localClients(emulators);
    // The pollers' requests are billed to you on AWS too (the event source mapping makes them).
    if (opts.meter) meterClient(clients.sqs, opts.meter);
    const runners: EventSourceRunner[] = [];
    const ownClients: Array<{ destroy(): void }> = [];
    if (opts.runFunctions !== false) {
      for (const [, r] of Object.entries(template.Resources).filter(
        ([, r]) => r.Type === 'AWS::Lambda::EventSourceMapping',
      )) {
        const props = r.Properties ?? {};
        const fnId = (props.FunctionName as { Ref: string }).Ref;
        const queueId = (props.EventSourceArn as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
        const fn = functions.find((f) => f.logicalId === fnId);
        const queue = provisioned.resources.get(queueId);
        if (!fn || !queue)
          throw new Error(`event source mapping for ${fnId} on ${queueId} does not resolve locally`);
        // With a meter per function, each mapping polls with its own client, so its receives are its own.
        let byFunction: Counts | undefined;
        if (opts.meterByFunction) {
          byFunction = opts.meterByFunction[fn.logicalId] ?? {};
          opts.meterByFunction[fn.logicalId] = byFunction;
        }
        let pollClient = clients.sqs;
        if (opts.meter && byFunction) {
          pollClient = localClients(emulators).sqs;
          meterClient(pollClient, opts.meter, byFunction);
          ownClients.push(pollClient);
        }
        const runner = new EventSourceRunner(
          pollClient,
          fn,
          {
            queueUrl: queue.ref,
            queueArn: queue.attrs.Arn ?? '',
            batchSize: Number(props.BatchSize ?? 10),
            batchingWindowSeconds: Number(props.MaximumBatchingWindowInSeconds ?? 0),
            maxConcurrency: Number(
              (props.ScalingConfig as { MaximumConcurrency?: number } | undefined)?.MaximumConcurrency ?? 2,
            ),
            reportBatchItemFailures: ((props.FunctionResponseTypes as string[] | undefined) ?? []).includes(
              'ReportBatchItemFailures',
            ),
          },
          {
            retryDelaySeconds: opts.retryDelaySeconds,
            onInvoke: opts.onInvoke,
            log,
            meter: opts.meter,
            functionMeter: byFunction,
            pollWaitSeconds: opts.pollWaitSeconds,
            isolation: opts.isolation,
            functionNode:
              typeof opts.functionNode === 'function' ? opts.functionNode(fn.runtime) : opts.functionNode,
          },
        );
        runner.start();
        runners.push(runner);
      }
      step(`functions ready: ${runners.map((r) => r.describe()).join(', ')}`);
    }
    const target = makeTarget(
      'sandbox',
      stackName,
      provisioned.outputs,
      {
        region: LOCAL_REGION,
        credentials: LOCAL_CREDENTIALS,
        endpoints: {
          sqs: emulators.sqsEndpoint,
          dynamodb: emulators.dynamodbEndpoint,
          s3: emulators.s3Endpoint,
        },
      },
      { supportsMessageMoveTask: false, required: opts.outputs },
    );
    return {
      target,
      emulators,
      provisioned,
      functions,
      logFile,
      functionEnvironment(prefix) {
        const fn = functions.find((f) => f.logicalId.startsWith(prefix));
        if (!fn) throw new Error(`no function ${prefix}* in ${stackName}`);
        return fn.environment;
      },
      async stop() {
        await Promise.all(runners.map((r) => r.stop()));
        for (const c of [...Object.values(clients), ...ownClients]) c.destroy();
        target.destroy();
        log?.end();
        await emulators.stop();
      },
    };
  } catch (error) {
    await emulators.stop();
    throw error;
  }
}
