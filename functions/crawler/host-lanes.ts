/**
 * A host's fetches in flight in one invocation, so the next URL of the host starts only when there is room
 * for it and no earlier fetch of the host failed. The FIFO loop itself must wait before starting its next
 * record (it owns the order and the skip-after-failure), so a queueing limiter such as p-limit does not fit;
 * this is a counter with waiters, written here.
 */
export class HostLanes {
  private readonly hosts = new Map<
    string,
    { inFlight: number; waiters: (() => void)[]; failure?: unknown }
  >();

  private lane(host: string) {
    let lane = this.hosts.get(host);
    if (!lane) {
      lane = { inFlight: 0, waiters: [] };
      this.hosts.set(host, lane);
    }
    return lane;
  }

  /**
   * Run one fetch of `host`; it counts as in flight from this call until it settles. An error for which
   * `stops` is true is the host's failure (see `room`), recorded before anyone waiting is woken.
   */
  async run<T>(host: string, fetch: () => Promise<T>, stops: (error: unknown) => boolean): Promise<T> {
    const lane = this.lane(host);
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
   * Resolves once fewer than `limit` fetches of `host` are in flight; rejects with the host's failure as
   * soon as one is recorded, so the next URL is not started behind it.
   */
  async room(host: string, limit: number): Promise<void> {
    const lane = this.lane(host);
    for (;;) {
      if (lane.failure !== undefined) throw lane.failure;
      if (lane.inFlight < Math.max(1, limit)) return;
      await new Promise<void>((resolve) => lane.waiters.push(resolve));
    }
  }
}
