// Plain JS, so the Lambda worker can import it without a loader.
import { readFileSync } from 'node:fs';

/**
 * CPU time of the calling thread so far, in ms, from Linux's per-thread scheduler statistics (the first
 * field of /proc/thread-self/schedstat, in ns); undefined where that file does not exist. Node 20 has no
 * per-thread CPU clock, and readFileSync makes its syscalls on the calling thread, so in a worker
 * "thread-self" is that worker's JS thread. Unlike event-loop utilisation, it does not count the time a busy
 * thread waits for a core on a loaded machine.
 */
export function threadCpuMs() {
  try {
    return Number(readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]) / 1e6;
  } catch {
    return undefined;
  }
}
