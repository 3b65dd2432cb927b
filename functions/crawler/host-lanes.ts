import { RetryableError } from '../kit/errors';

/** A URL not started because an earlier URL of its host failed in this invocation: SQS retries it. */
export class HostFailedError extends RetryableError {
  constructor(host: string, cause: unknown) {
    super(`not started: an earlier URL of ${host} failed (${(cause as Error)?.message ?? cause})`, { cause });
    this.name = 'HostFailedError';
  }
}

interface Lane {
  inFlight: number;
  /** Fetches of the host allowed at once, as the host's latest fetch was told (1 until one has run). */
  limit: number;
  waiters: (() => void)[];
  failure?: unknown;
}

/**
 * A host's fetches in flight in one invocation, so that its next URL starts only when there is room for it
 * and no earlier fetch of the host failed. The FIFO loop must wait before it starts a record (it owns the
 * order and the skip after a failure), and a record already started must never be left behind, so a
 * queueing limiter such as p-limit does not fit; this is a counter with waiters, written here.
 */
export class HostLanes {
  private readonly hosts = new Map<string, Lane>();

  private lane(host: string): Lane {
    let lane = this.hosts.get(host);
    if (!lane) {
      lane = { inFlight: 0, limit: 1, waiters: [] };
      this.hosts.set(host, lane);
    }
    return lane;
  }

  /**
   * Run one fetch of `host`, `limit` of whose fetches may be in flight at once; it counts as in flight from
   * this call until it settles. An error for which `stops` is true is the host's failure (see `room`),
   * recorded before anyone waiting is woken.
   */
  async run<T>(
    host: string,
    limit: number,
    fetch: () => Promise<T>,
    stops: (error: unknown) => boolean,
  ): Promise<T> {
    const lane = this.lane(host);
    lane.limit = Math.max(1, limit);
    lane.inFlight += 1;
    try {
      return await fetch();
    } catch (error) {
      if (stops(error)) lane.failure ??= error;
      throw error;
    } finally {
      lane.inFlight -= 1;
      for (const wake of lane.waiters.splice(0)) wake();
    }
  }

  /**
   * Resolves once a new URL of `host` may start: fewer fetches of it in flight than its limit. Rejects with
   * a HostFailedError once one of its fetches failed, so nothing starts behind it.
   */
  async room(host: string): Promise<void> {
    const lane = this.lane(host);
    for (;;) {
      if (lane.failure !== undefined) throw new HostFailedError(host, lane.failure);
      if (lane.inFlight < lane.limit) return;
      await new Promise<void>((resolve) => lane.waiters.push(resolve));
    }
  }
}
