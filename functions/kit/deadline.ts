/**
 * Settle with `work`, or with the error `expired()` gives once `ms` have passed, whichever comes first.
 * It does not rely on `work` ever settling: a socket or resolver that never reports back still cannot hold
 * the caller past the deadline. A late rejection of `work` is absorbed, and the timer is always cleared.
 */
export async function settleBy<T>(work: Promise<T>, ms: number, expired: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(expired()), ms);
  });
  work.catch(() => undefined);
  try {
    return await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
  }
}
