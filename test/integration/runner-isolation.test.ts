import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CreateQueueCommand, SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { startFauxqs } from 'fauxqs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createClients } from '../../functions/kit/clients';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../../sandbox/emulators';
import {
  EventSourceRunner,
  type InvocationStats,
  type Isolation,
  lambdaHeapFlags,
} from '../../sandbox/runner';
import { queueDepth, waitFor } from '../../tooling/queues';

// The sandbox's execution environments, as worker threads and as child processes: what each reports about
// an invocation, and how an environment that dies mid-invocation fails it (as Lambda's Runtime.ExitError),
// at once rather than at the function's timeout, and is replaced by a fresh one.
const HOLD_MB = 48;
const bundleDir = mkdtempSync(path.join(os.tmpdir(), 'runner-isolation-'));
const bundlePath = path.join(bundleDir, 'index.mjs');
writeFileSync(
  bundlePath,
  `export const handler = async (event) => {
  const record = event.Records[0];
  const first = record.attributes.ApproximateReceiveCount === '1';
  if (record.body === 'exit' && first) process.exit(3);
  if (record.body === 'later-exit' && first) {
    // Ends after the invocation has answered: the retry must find a fresh environment.
    setTimeout(() => process.exit(0), 200);
    return { batchItemFailures: [{ itemIdentifier: record.messageId }] };
  }
  const hold = Buffer.alloc(${HOLD_MB} * 1024 * 1024, 1);
  let x = 0;
  for (let i = 0; i < 2e7; i++) x += Math.sqrt(i);
  // Where and how the environment runs, for the test to read back.
  const { writeFileSync } = await import('node:fs');
  writeFileSync(process.env.PROBE_OUT, JSON.stringify({ execPath: process.execPath, execArgv: process.execArgv }));
  return { batchItemFailures: [], note: hold.length + x };
};
`,
);

const probeOut = path.join(bundleDir, 'probe.json');
const brokenPath = path.join(bundleDir, 'broken.mjs');
writeFileSync(brokenPath, `throw new Error('bad init');\nexport const handler = async () => ({});\n`);

let queues = 0;
let server: Awaited<ReturnType<typeof startFauxqs>>;
let sqs: SQSClient;
beforeAll(async () => {
  server = await startFauxqs({ port: 0, logger: false, defaultRegion: LOCAL_REGION });
  ({ sqs } = createClients({
    region: LOCAL_REGION,
    credentials: LOCAL_CREDENTIALS,
    endpoints: { sqs: `http://127.0.0.1:${server.port}` },
  }));
});
afterAll(async () => {
  sqs?.destroy();
  await server?.stop();
});

async function run(
  isolation: Isolation,
  body: string,
  {
    bundle = bundlePath,
    until = (stats: InvocationStats[]) => stats.some((s) => s.outcome === 'ok'),
    retryDelaySeconds = 0,
    environment = {} as Record<string, string>,
  } = {},
): Promise<{ stats: InvocationStats[]; left: number }> {
  const { QueueUrl } = await sqs.send(
    new CreateQueueCommand({
      QueueName: `iso-${isolation}-${body}-${++queues}`,
      Attributes: { VisibilityTimeout: '60' },
    }),
  );
  const queueUrl = QueueUrl as string;
  await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: body }));
  const stats: InvocationStats[] = [];
  const runner = new EventSourceRunner(
    sqs,
    {
      logicalId: 'Probe',
      bundlePath: bundle,
      handlerName: 'handler',
      // Far above the test's wait: an exit must fail the invocation by itself, not by the timeout.
      timeoutMs: 120_000,
      memorySize: 256,
      environment: { PROBE_OUT: probeOut, ...environment },
    },
    {
      queueUrl,
      queueArn: 'arn:aws:sqs:us-east-1:000000000000:probe',
      batchSize: 1,
      maxConcurrency: 1,
      reportBatchItemFailures: true,
    },
    {
      isolation,
      retryDelaySeconds,
      onInvoke: (s) => stats.push(s),
      ...(isolation === 'process' ? { functionNode: process.execPath } : {}),
    },
  );
  runner.start();
  try {
    await waitFor('the invocations awaited', async () => until(stats), {
      timeoutMs: 30_000,
    });
  } finally {
    await runner.stop();
  }
  const depth = await queueDepth({ sqs }, queueUrl);
  return { stats, left: depth.visible + depth.inFlight };
}

describe('lambdaHeapFlags', () => {
  it("gives a tenth of the function's memory to the young generation, in two semi-spaces, and the rest to the old", () => {
    expect(lambdaHeapFlags(256)).toEqual(['--max-semi-space-size=12', '--max-old-space-size=231']);
    expect(lambdaHeapFlags(512)).toEqual(['--max-semi-space-size=25', '--max-old-space-size=461']);
    expect(lambdaHeapFlags(1769)).toEqual(['--max-semi-space-size=88', '--max-old-space-size=1593']);
  });
});

describe('a process environment with an exec wrapper', () => {
  // The wrapper QueueConsumer ships for `semiSpaceMb` and `heapGrowingPercent`, beside the bundle as in /var/task.
  copyFileSync(
    path.join(import.meta.dirname, '..', '..', 'functions', 'kit', 'heap-wrapper.sh'),
    path.join(bundleDir, 'heap-wrapper.sh'),
  );

  it("starts the runtime through it, as Lambda does, so the function's heap flags are the wrapper's", async () => {
    rmSync(probeOut, { force: true });
    const { stats, left } = await run('process', 'work', {
      environment: {
        AWS_LAMBDA_EXEC_WRAPPER: '/var/task/heap-wrapper.sh',
        V8_SEMI_SPACE_MB: '3',
        V8_HEAP_GROWING_PERCENT: '200',
      },
    });
    expect(stats.map((s) => s.outcome)).toEqual(['ok']);
    expect(left).toBe(0);
    // Still measured as a process environment: the wrapper execs the runtime in its own place.
    expect(stats[0]?.peakRssMb).toBeGreaterThan(HOLD_MB);
    const probe = JSON.parse(readFileSync(probeOut, 'utf8')) as { execPath: string; execArgv: string[] };
    expect(probe.execPath).toBe(process.execPath);
    expect(probe.execArgv).toEqual([
      '--heap-growing-percent=200',
      '--max-semi-space-size=3',
      lambdaHeapFlags(256)[1],
    ]);
  });

  it('fails INIT with the reason, and keeps the record, for a wrapper outside the bundle', async () => {
    const written: string[] = [];
    const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
      written.push(String(chunk));
      return true;
    });
    try {
      const { stats, left } = await run('process', 'work', {
        environment: { AWS_LAMBDA_EXEC_WRAPPER: '/opt/wrapper.sh' },
        until: (s) => s.length >= 1,
      });
      expect(stats[0]?.outcome).toBe('error');
      expect(left).toBe(1);
    } finally {
      spy.mockRestore();
    }
    expect(written.join('')).toContain(
      "INIT failed: AWS_LAMBDA_EXEC_WRAPPER is /opt/wrapper.sh: the sandbox runs only an exec wrapper shipped in the function's bundle",
    );
  });
});

describe.each(['thread', 'process'] as const)('execution environments as %s', (isolation) => {
  it('report their CPU, and as processes their whole CPU and peak memory', async () => {
    rmSync(probeOut, { force: true });
    const { stats, left } = await run(isolation, 'work');
    const [first] = stats;
    expect(stats).toHaveLength(1);
    expect(left).toBe(0);
    expect(first?.initMs).toBeGreaterThan(0);
    expect(first?.cpuMs).toBeGreaterThan(5);
    const probe = JSON.parse(readFileSync(probeOut, 'utf8')) as { execPath: string; execArgv: string[] };
    if (isolation === 'process') {
      // The whole process includes the JS thread, and holds the handler's buffer.
      expect(first?.environmentCpuMs).toBeGreaterThanOrEqual(first?.cpuMs ?? Number.POSITIVE_INFINITY);
      expect(first?.peakRssMb).toBeGreaterThan(HOLD_MB);
      // On the Node it was given, with the heap limits Lambda derives from 256 MB.
      expect(probe.execPath).toBe(process.execPath);
      expect(probe.execArgv).toEqual(lambdaHeapFlags(256));
    } else {
      expect(first?.environmentCpuMs).toBeUndefined();
      expect(first?.peakRssMb).toBeUndefined();
      // A worker shares this process's Node and flags.
      expect(probe.execArgv).toEqual(process.execArgv);
    }
  });

  it('fail an invocation whose environment exits, at once, and start a fresh one for the retry', async () => {
    const { stats, left } = await run(isolation, 'exit');
    expect(stats.map((s) => s.outcome)).toEqual(['error', 'ok']);
    expect(stats[0]?.durationMs).toBeLessThan(20_000);
    expect(stats[1]?.initMs).toBeGreaterThan(0);
    expect(left).toBe(0);
  });

  it('replace an environment that ended between invocations', async () => {
    const { stats, left } = await run(isolation, 'later-exit', { retryDelaySeconds: 1 });
    expect(stats.map((s) => s.outcome)).toEqual(['partial', 'ok']);
    expect(stats[1]?.initMs).toBeGreaterThan(0);
    expect(left).toBe(0);
  });

  it('fail the invocations of a bundle that throws on import, and keep its records', async () => {
    const { stats, left } = await run(isolation, 'work', { bundle: brokenPath, until: (s) => s.length >= 2 });
    expect(stats.length).toBeGreaterThanOrEqual(2);
    expect(stats.every((s) => s.outcome === 'error' && s.initMs !== undefined)).toBe(true);
    expect(left).toBe(1);
  });
});
