import { describe, expect, it } from 'vitest';
import { HostFailedError, HostLanes } from '../../functions/crawler/host-lanes';

/** A fetch the test settles by hand. */
function pending<T>() {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Whether a promise has settled once pending callbacks have run. */
const settled = async (p: Promise<unknown>) => {
  let done = false;
  p.then(
    () => {
      done = true;
    },
    () => {
      done = true;
    },
  );
  await new Promise((r) => setImmediate(r));
  return done;
};

const always = () => true;

describe('HostLanes', () => {
  it('lets a host start while fewer fetches than its limit are in flight, and makes the next wait for one to end', async () => {
    const lanes = new HostLanes();
    const fetches = [pending<string>(), pending<string>()];
    const runs = fetches.map((f) => lanes.run('a', 3, () => f.promise, always));
    expect(await settled(lanes.room('a'))).toBe(true);
    const third = pending<string>();
    const run3 = lanes.run('a', 3, () => third.promise, always);
    const waiting = lanes.room('a');
    expect(await settled(waiting)).toBe(false);
    fetches[0]?.resolve('one');
    expect(await runs[0]).toBe('one');
    expect(await settled(waiting)).toBe(true);
    fetches[1]?.resolve('two');
    third.resolve('three');
    await Promise.all([runs[1], run3]);
  });

  it('allows one fetch at a time for a host until a fetch says otherwise, and keeps hosts apart', async () => {
    const lanes = new HostLanes();
    expect(await settled(lanes.room('a'))).toBe(true);
    const f = pending<void>();
    const run = lanes.run('a', 0, () => f.promise, always);
    expect(await settled(lanes.room('b'))).toBe(true);
    const waiting = lanes.room('a');
    expect(await settled(waiting)).toBe(false);
    f.resolve();
    await run;
    expect(await settled(waiting)).toBe(true);
  });

  it('takes the limit from the latest fetch: a Crawl-delay host drops to one', async () => {
    const lanes = new HostLanes();
    const f = pending<void>();
    const run = lanes.run('a', 1, () => f.promise, always);
    expect(await settled(lanes.room('a'))).toBe(false);
    f.resolve();
    await run;
  });

  it('refuses to start anything behind a failure that stops the host, even a waiter woken by that very fetch', async () => {
    const lanes = new HostLanes();
    const f = pending<void>();
    const run = lanes.run('a', 1, () => f.promise, always);
    const waiting = lanes.room('a');
    const failure = new Error('503');
    f.reject(failure);
    await expect(run).rejects.toBe(failure);
    const refused = await waiting.catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(HostFailedError);
    expect((refused as Error).message).toMatch(/earlier URL of a failed \(503\)/);
    expect((refused as Error).cause).toBe(failure);
    await expect(lanes.room('a')).rejects.toBeInstanceOf(HostFailedError);
    await expect(lanes.room('b')).resolves.toBeUndefined();
  });

  it('gives room after a failure that is the URL’s own outcome, not the host’s', async () => {
    const lanes = new HostLanes();
    const notHtml = new Error('not-html');
    await expect(
      lanes.run(
        'a',
        1,
        () => Promise.reject(notHtml),
        () => false,
      ),
    ).rejects.toBe(notHtml);
    await expect(lanes.room('a')).resolves.toBeUndefined();
  });

  it('keeps the first failure of a host', async () => {
    const lanes = new HostLanes();
    const first = new Error('first');
    await lanes.run('a', 2, () => Promise.reject(first), always).catch(() => undefined);
    await lanes.run('a', 2, () => Promise.reject(new Error('second')), always).catch(() => undefined);
    await expect(lanes.room('a')).rejects.toMatchObject({ cause: first });
  });
});
