import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { threadCpuMs } from '../../sandbox/usage.mjs';

const linux = process.platform === 'linux';

// The worker spins through a fixed amount of work and reports its own thread's CPU for it, while this
// thread only waits: each thread must be charged its own time, not the process's.
const spin = `
  const { parentPort } = require('node:worker_threads');
  import(${JSON.stringify(new URL('../../sandbox/usage.mjs', import.meta.url).href)}).then(({ threadCpuMs }) => {
    const before = threadCpuMs();
    let x = 0;
    for (let i = 0; i < 3e7; i++) x += Math.sqrt(i);
    parentPort.postMessage({ used: threadCpuMs() - before, x });
  });
`;

describe('threadCpuMs', () => {
  it("charges a worker's work to the worker's thread, not to the thread that waits", async () => {
    if (!linux) {
      // Elsewhere there is no per-thread figure, and the bench falls back to event-loop utilisation.
      expect(threadCpuMs()).toBeUndefined();
      return;
    }
    const mainBefore = threadCpuMs() as number;
    const worker = new Worker(spin, { eval: true });
    const { used } = await new Promise<{ used: number }>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    const mainUsed = (threadCpuMs() as number) - mainBefore;
    await worker.terminate();
    expect(used).toBeGreaterThan(5);
    expect(mainUsed).toBeLessThan(used);
  });
});
