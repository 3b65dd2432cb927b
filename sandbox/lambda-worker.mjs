// One Lambda "execution environment": a worker thread that imports a function bundle once (cold start)
// and then serves invocations one at a time, as a Lambda container does. Plain JS so it needs no loader.
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { parentPort, workerData } from 'node:worker_threads';
import { threadCpuMs } from './thread-cpu.mjs';

const { bundlePath, handlerName, functionName, memorySize, timeoutMs, meter } = workerData;
let counts;
if (meter) {
  const m = await import('./meter.mjs');
  counts = m.newCounts();
  m.installMeter(counts);
}
const mod = await import(bundlePath);
const handler = mod[handlerName];
if (typeof handler !== 'function') throw new Error(`${bundlePath} does not export ${handlerName}`);
parentPort.postMessage({ type: 'ready' });

parentPort.on('message', async ({ id, event }) => {
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
  // Neither counts the work Node hands to its thread pool (zlib, crypto).
  const elu = performance.eventLoopUtilization();
  const cpuAtStart = threadCpuMs();
  const cpu = () => {
    const activeMs = performance.eventLoopUtilization(elu).active;
    const now = threadCpuMs();
    return cpuAtStart === undefined || now === undefined
      ? { activeMs }
      : { activeMs, cpuMs: now - cpuAtStart };
  };
  try {
    const result = await handler(event, context);
    parentPort.postMessage({ type: 'result', id, result, counts: takeCounts(), ...cpu() });
  } catch (error) {
    parentPort.postMessage({
      type: 'error',
      id,
      error: { name: error?.name, message: String(error?.message ?? error) },
      counts: takeCounts(),
      ...cpu(),
    });
  }
});
