import { readFileSync } from 'node:fs';

/**
 * Time a thread spent runnable but waiting for a CPU (Linux /proc/<pid>/schedstat, field 2: the
 * run-queue delay, ns), in ms; 0 where it is not available. For `self` this is the main thread:
 * the one that runs all the JavaScript. On a shared machine it says how much of a slowdown is
 * other people's load rather than our own work.
 */
export function runQueueDelayMs(pid: number | 'self' = 'self'): number {
  try {
    return Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').trim().split(/\s+/)[1]) / 1e6;
  } catch {
    return 0;
  }
}

/**
 * CPU time of the main thread alone (Linux /proc/self/schedstat, field 1: time on a CPU, ns), in ms;
 * 0 where it is not available. The process's figure also counts the index thread, the GC's helper
 * threads, libuv's pool (fsync) and the kernel's work for its sockets.
 */
export function mainThreadCpuMs(): number {
  try {
    return Number(readFileSync('/proc/self/schedstat', 'utf8').trim().split(/\s+/)[0]) / 1e6;
  } catch {
    return 0;
  }
}

/** CPU time (user + system) of a process, from /proc (Linux); 0 elsewhere. */
export function processCpuMs(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // utime, stime in clock ticks (USER_HZ = 100)
  } catch {
    return 0;
  }
}
