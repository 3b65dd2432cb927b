import '../tooling/quiet-sdk';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { type Demo, DemoUsageError } from './demo';
import type { InvocationStats } from './runner';
import type { Sandbox } from './sandbox';

const ROOT = path.join(import.meta.dirname, '..');
const DEFAULT_STACK = 'Crawler-dev';

const USAGE = `usage: npm start -- [--stack NAME] [--keep] [--as-lambda] [demo arguments]

Runs a stack of this app on your machine (emulators provisioned from its synthesized template, its functions
on local event source mappings), then its demo, demos/<name>.ts, if it has one.
--stack NAME   a stack of bin/app.ts, default ${DEFAULT_STACK}
--keep         leave the sandbox running afterwards, for \`npm run cli -- …\` in another terminal
--as-lambda    run each function as Lambda does: a process of its own, on its runtime's Node (fetched once
               into .cache/ when yours is another), with Lambda's heap limits for its memory; prints each
               function's peak memory (Lambda's "Max Memory Used") when it stops`;

/** Arguments that can never work: one line, exit 2, before anything has started. */
function usageError(message: string): never {
  console.error(`✖ ${message}`);
  process.exit(2);
}

/** The demo of a stack, by the naming convention in sandbox/demo.ts; undefined if it has none. */
async function loadDemo(stackName: string): Promise<Demo | undefined> {
  const name = stackName.split('-')[0]?.toLowerCase() ?? '';
  const file = path.join(ROOT, 'demos', `${name}.ts`);
  if (!name || !existsSync(file)) return undefined;
  return ((await import(file)) as { demo: Demo }).demo;
}

/**
 * The sandbox options of --as-lambda: each function a process on its runtime's Node, its invocations kept
 * so that `report` can print each function's peak memory.
 */
async function lambdaLike() {
  const { nodeOfRuntime } = await import('../tooling/lambda-node.mjs');
  const { peakMemory } = await import('./runner');
  const stats: InvocationStats[] = [];
  // One lookup (and at most one download) per runtime, however many functions share it.
  const nodes = new Map<string | undefined, string | undefined>();
  const functionNode = (runtime: string | undefined): string | undefined => {
    if (!nodes.has(runtime)) {
      const found = nodeOfRuntime(runtime, { log: (line) => console.log(`  ${line}`) });
      if (!found.path) console.log(`  running on Node ${process.version} instead: ${found.why}`);
      nodes.set(runtime, found.path);
    }
    return nodes.get(runtime);
  };
  return {
    options: {
      isolation: 'process' as const,
      functionNode,
      onInvoke: (s: InvocationStats) => void stats.push(s),
    },
    report: () => {
      const peaks = peakMemory(stats);
      if (peaks.byFunction.size > 0) console.log(`  peak memory (Lambda's "Max Memory Used"): ${peaks.line}`);
    },
  };
}

async function main(): Promise<void> {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    // The generic options; everything else is the demo's to check.
    parsed = parseArgs({
      strict: false,
      allowPositionals: true,
      options: {
        stack: { type: 'string' },
        keep: { type: 'boolean' },
        'as-lambda': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      tokens: true,
    });
  } catch (error) {
    usageError(`${(error as Error).message}\n${USAGE}`);
  }
  const stackName = typeof parsed.values.stack === 'string' ? parsed.values.stack : DEFAULT_STACK;
  const demo = await loadDemo(stackName);
  if (parsed.values.help) return void console.log(`${USAGE}${demo ? `\n\n${demo.usage}` : ''}`);
  // Everything but the generic options, as typed (`--max-pages=5` stays one argument), in order.
  const generic = new Set(['stack', 'keep', 'as-lambda', 'help']);
  const argv = process.argv.slice(2);
  const rest = (parsed.tokens ?? [])
    .filter((t) => t.kind === 'positional' || (t.kind === 'option' && !generic.has(t.name)))
    .map((t) => argv[t.index] as string);
  let args: unknown;
  try {
    if (demo) args = demo.parse(rest);
    else if (rest.length > 0)
      throw new DemoUsageError(`${stackName} has no demo (demos/…ts) to take ${rest.join(' ')}`);
  } catch (error) {
    if (error instanceof DemoUsageError)
      usageError(
        `${error.message}${/^one URL|^Unknown option/.test(error.message) ? `\n${USAGE}${demo ? `\n\n${demo.usage}` : ''}` : ''}`,
      );
    throw error;
  }

  // The rest (AWS SDK, CDK tooling) loads only once the arguments are known to be good: a typo answers at once.
  const { checkJava } = await import('./emulators');
  const { startSandbox } = await import('./sandbox');
  const { removeSandboxFile, writeSandboxFile } = await import('../tooling/sandbox-file');
  const { formatStatus, stackStatus } = await import('../tooling/queues');
  // The one thing the machine may lack: say so before the synth, not after it.
  checkJava();

  const started = Date.now();
  console.log(
    `▶ starting the sandbox for ${stackName}: Java found; synthesizing the stack, then the emulators…`,
  );
  const prepared = demo?.prepare ? await demo.prepare(args) : undefined;
  const asLambda = parsed.values['as-lambda'] === true ? await lambdaLike() : undefined;
  let sandbox: Sandbox | undefined;
  let stopping = false;
  const shutdown = async (code: number) => {
    if (stopping) return;
    stopping = true;
    removeSandboxFile();
    await sandbox?.stop();
    asLambda?.report();
    await prepared?.stop();
    process.exit(code);
  };
  process.on('SIGINT', () => {
    console.log('\n■ stopping…');
    void shutdown(130);
  });
  process.on('SIGTERM', () => void shutdown(143));

  sandbox = await startSandbox({
    stackName,
    synth: 'always',
    onStep: (step, ms) => console.log(`  ✓ ${step} (${(ms / 1000).toFixed(1)} s)`),
    retryDelaySeconds: 1,
    functionEnv: { POWERTOOLS_LOG_LEVEL: 'INFO', ...prepared?.functionEnv },
    ...asLambda?.options,
  });
  const skipped = Object.entries(sandbox.provisioned.notProvisioned).map(([t, n]) => `${t}×${n}`);
  console.log(
    `  ready in ${((Date.now() - started) / 1000).toFixed(1)} s. Not emulated locally: ${skipped.join(', ') || 'nothing'}`,
  );
  console.log(`  function logs: ${path.relative(ROOT, sandbox.logFile)}`);
  writeSandboxFile({
    stackName,
    outputs: sandbox.provisioned.outputs,
    endpoints: {
      sqs: sandbox.emulators.sqsEndpoint,
      dynamodb: sandbox.emulators.dynamodbEndpoint,
      s3: sandbox.emulators.s3Endpoint,
    },
    region: 'us-east-1',
    pid: process.pid,
  });

  const result = demo ? await demo.run(sandbox, args, (line) => console.log(line)) : undefined;
  if (stopping) return;
  if (!demo)
    console.log(
      `  ${stackName} has no demo (demos/…ts); its queues: ${formatStatus(await stackStatus(sandbox.target))}`,
    );
  if (parsed.values.keep || !demo) {
    console.log('  sandbox still running; Ctrl-C to stop. In another terminal:');
    for (const hint of [...(result?.keepHints ?? []), 'npm run cli -- status --watch'])
      console.log(`    ${hint}`);
    return;
  }
  await shutdown(result?.ok === false ? 1 : 0);
}

main().catch(async (error) => {
  const { SandboxSetupError } = await import('./emulators');
  console.error(error instanceof SandboxSetupError ? `✖ ${error.message}` : error);
  process.exit(1);
});
