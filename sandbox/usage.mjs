// Plain JS, so the Lambda worker can import it without a loader. CPU and memory figures from Linux /proc.
import { readdirSync, readFileSync } from 'node:fs';

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

/** Clock ticks per second of /proc's utime and stime: 100 on Linux's usual builds (getconf CLK_TCK). */
const TICKS_PER_SECOND = 100;

/**
 * CPU time of another process so far, all its threads, in ms (utime + stime of /proc/<pid>/stat, at 10 ms
 * resolution); undefined where that file does not exist.
 */
export function processCpuMs(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The fields after the command name, which is in parentheses and may hold spaces: utime is field 14.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_SECOND;
  } catch {
    return undefined;
  }
}

/**
 * This process's peak resident memory so far, in MB (VmHWM of /proc/self/status): for a process that is
 * one Lambda execution environment, the "Max Memory Used" of Lambda's REPORT line. Undefined off Linux.
 */
export function peakRssMb() {
  try {
    const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
    return match ? Number(match[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Thread names Node (22 and later) gives its threads, by what they do. */
const THREAD_KINDS = { MainThread: 'js', V8Worker: 'gc', 'libuv-worker': 'pool' };

/**
 * Each thread's kind, by thread id: a thread keeps its name, so it is read once. The reads are part of what
 * an invocation measures, and a Lambda function does not make them.
 */
const kindOfThread = new Map();

/**
 * This process's CPU so far by kind of thread, in ms: its JS thread, V8's helper threads (mostly garbage
 * collection) and libuv's thread pool (zlib, DNS lookups, file I/O); anything else under `other`. Undefined
 * where the threads are unnamed (Node 20) or /proc does not exist.
 */
export function cpuByThreadKindMs() {
  try {
    const totals = { js: 0, gc: 0, pool: 0, other: 0 };
    let named = false;
    for (const task of readdirSync('/proc/self/task')) {
      let kind = kindOfThread.get(task);
      let ns;
      try {
        if (kind === undefined) {
          kind = THREAD_KINDS[readFileSync(`/proc/self/task/${task}/comm`, 'utf8').trim()] ?? 'other';
          // A thread starts with its creator's name and is renamed as it starts: only the main thread (whose
          // id is the process's) keeps "MainThread", so another one of that name is read again next time.
          if (kind !== 'js' || task === String(process.pid)) kindOfThread.set(task, kind);
        }
        ns = Number(readFileSync(`/proc/self/task/${task}/schedstat`, 'utf8').split(' ')[0]);
      } catch {
        continue; // the thread ended while being read
      }
      if (kind === 'js') named = true;
      totals[kind] += ns / 1e6;
    }
    return named ? totals : undefined;
  } catch {
    return undefined;
  }
}
