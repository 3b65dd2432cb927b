import { describe, expect, it } from 'vitest';
import { HostLanes } from '../../functions/crawler/host-lanes';

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
  it('has room while fewer than the limit are in flight, and makes the next wait until one ends', async () => {
    const lanes = new HostLanes();
    const fetches = [pending<string>(), pending<string>()];
    const runs = fetches.map((f) => lanes.run('a', () => f.promise, always));
    expect(await settled(lanes.room('a', 3))).toBe(true);
    const waiting = lanes.room('a', 2);
    expect(await settled(waiting)).toBe(false);
    fetches[0]?.resolve('one');
    expect(await runs[0]).toBe('one');
    expect(await settled(waiting)).toBe(true);
    fetches[1]?.resolve('two');
    await runs[1];
  });

  it('keeps hosts apart, and treats a limit below one as one', async () => {
    const lanes = new HostLanes();
    const f = pending<void>();
    const run = lanes.run('a', () => f.promise, always);
    expect(await settled(lanes.room('b', 1))).toBe(true);
    const waiting = lanes.room('a', 0);
    expect(await settled(waiting)).toBe(false);
    f.resolve();
    await run;
    expect(await settled(waiting)).toBe(true);
  });

  it('refuses room behind a failure that stops the host, even to a waiter woken by that very fetch ending', async () => {
    const lanes = new HostLanes();
    const f = pending<void>();
    const run = lanes.run('a', () => f.promise, always);
    const waiting = lanes.room('a', 1);
    const failure = new Error('503');
    f.reject(failure);
    await expect(run).rejects.toBe(failure);
    await expect(waiting).rejects.toBe(failure);
    await expect(lanes.room('a', 4)).rejects.toBe(failure);
    await expect(lanes.room('b', 1)).resolves.toBeUndefined();
  });

  it('gives room after a failure that is the URL’s own outcome, not the host’s', async () => {
    const lanes = new HostLanes();
    const notHtml = new Error('not-html');
    await expect(
      lanes.run(
        'a',
        () => Promise.reject(notHtml),
        () => false,
      ),
    ).rejects.toBe(notHtml);
    await expect(lanes.room('a', 1)).resolves.toBeUndefined();
  });

  it('keeps the first failure of a host', async () => {
    const lanes = new HostLanes();
    const first = new Error('first');
    await lanes.run('a', () => Promise.reject(first), always).catch(() => undefined);
    await lanes.run('a', () => Promise.reject(new Error('second')), always).catch(() => undefined);
    await expect(lanes.room('a', 2)).rejects.toBe(first);
  });
});
