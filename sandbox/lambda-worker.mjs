// One Lambda "execution environment": a worker thread, or a child process (isolation 'process'), that
// imports a function bundle once (cold start) and then serves invocations one at a time, as a Lambda
// container does. Plain JS so it needs no loader.
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { parentPort, workerData } from 'node:worker_threads';
import { cpuByThreadKindMs, peakRssMb, threadCpuMs } from './usage.mjs';

// A child process gets its settings in the environment and talks over IPC; a worker thread over its port.
const asProcess = parentPort === null;
const channel = asProcess
  ? { postMessage: (m) => process.send(m), on: (event, listener) => process.on(event, listener) }
  : parentPort;
if (asProcess) process.once('disconnect', () => process.exit(0));
const { bundlePath, handlerName, functionName, memorySize, timeoutMs, meter } = asProcess
  ? JSON.parse(process.env.SANDBOX_LAMBDA_WORKER_DATA ?? '{}')
  : workerData;
let counts;
if (meter) {
  const m = await import('./meter.mjs');
  counts = m.newCounts();
  m.installMeter(counts);
}
const mod = await import(bundlePath);
const handler = mod[handlerName];
if (typeof handler !== 'function') throw new Error(`${bundlePath} does not export ${handlerName}`);
channel.postMessage({ type: 'ready' });

channel.on('message', async ({ id, event }) => {
  const deadline = Date.now() + timeoutMs;
  const context = {
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:us-east-1:000000000000:function:${functionName}`,
    memoryLimitInMB: String(memorySize),
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: 'sandbox',
    callbackWaitsForEmptyEventLoop: false,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done() {},
    fail() {},
    succeed() {},
  };
  // Counts of this invocation's AWS requests, handed to the runner and reset.
  const takeCounts = () => {
    if (!counts) return undefined;
    const out = structuredClone(counts);
    for (const k of Object.keys(counts)) delete counts[k];
    return out;
  };
  // The JS thread's busy time during the invocation (event-loop utilization), which also counts the time a
  // busy thread waits for a core on a loaded machine; and, where Linux tells it, the thread's CPU time.
  // Neither counts the work Node hands to its thread pool (zlib) or V8's helper threads (GC); a child
  // process also reports its whole CPU, which does, and its peak memory.
  // The environment's whole CPU is read last at the start and first at the end, so the /proc reads that
  // split it by thread, which a Lambda function does not make, stay out of it.
  const elu = performance.eventLoopUtilization();
  const kindsAtStart = asProcess ? cpuByThreadKindMs() : undefined;
  const cpuAtStart = threadCpuMs();
  const processAtStart = asProcess ? process.cpuUsage() : undefined;
  const cpu = () => {
    const whole = processAtStart && process.cpuUsage(processAtStart);
    const activeMs = performance.eventLoopUtilization(elu).active;
    const now = threadCpuMs();
    const peak = asProcess ? peakRssMb() : undefined;
    const kinds = kindsAtStart && cpuByThreadKindMs();
    return {
      activeMs,
      ...(cpuAtStart === undefined || now === undefined ? {} : { cpuMs: now - cpuAtStart }),
      ...(whole ? { environmentCpuMs: (whole.user + whole.system) / 1000 } : {}),
      ...(peak === undefined ? {} : { peakRssMb: peak }),
      ...(kindsAtStart && kinds
        ? {
            cpuByKindMs: {
              js: kinds.js - kindsAtStart.js,
              gc: kinds.gc - kindsAtStart.gc,
              pool: kinds.pool - kindsAtStart.pool,
              other: kinds.other - kindsAtStart.other,
            },
          }
        : {}),
    };
  };
  try {
    const result = await handler(event, context);
    channel.postMessage({ type: 'result', id, result, counts: takeCounts(), ...cpu() });
  } catch (error) {
    channel.postMessage({
      type: 'error',
      id,
      error: { name: error?.name, message: String(error?.message ?? error) },
      counts: takeCounts(),
      ...cpu(),
    });
  }
});
