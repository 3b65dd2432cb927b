import { describe, expect, it } from 'vitest';
import { OUTCOMES } from '../../functions/crawl/url-record';
import {
  classifyFailure,
  FetchOutcomeError,
  MAX_RETRY_DELAY_SECONDS,
  MIN_RECEIVES,
  parseRetryAfter,
  retryDelaySeconds,
  TRANSIENT_OUTCOME,
  TransientFetchError,
  transientRetries,
} from '../../functions/crawler/failures';
import { PermanentError } from '../../functions/kit/errors';

describe('the crawler’s failure classification', () => {
  it('retries a transient failure while attempts are left for it, then records its outcome', () => {
    const error = new TransientFetchError('http-error', 'HTTP 503', 503);
    // maxReceiveCount 5: attempts 1 and 2 retry; 3 (the last before the two kept for the pipeline) records.
    expect(classifyFailure(error, 1, 5)).toEqual({ kind: 'retry', reason: 'http-error' });
    expect(classifyFailure(error, 2, 5)).toEqual({ kind: 'retry', reason: 'http-error' });
    expect(classifyFailure(error, 3, 5)).toMatchObject({ kind: 'outcome', outcome: 'http-error' });
    expect(classifyFailure(error, 5, 5).kind).toBe('outcome');
  });

  it('sends a timed-out URL to the back of its host’s group while attempts are left, then records it', () => {
    const error = new TransientFetchError('timeout', 'fetch did not finish within 10000 ms');
    expect(classifyFailure(error, 1, 5)).toEqual({ kind: 'requeue', reason: 'timeout' });
    expect(classifyFailure(error, 2, 5)).toEqual({ kind: 'requeue', reason: 'timeout' });
    expect(classifyFailure(error, 3, 5)).toEqual({
      kind: 'outcome',
      outcome: 'timeout',
      detail: 'fetch did not finish within 10000 ms',
    });
    // Every other transient reason speaks for the host: its group waits.
    for (const reason of ['dns-error', 'network-error', 'crawl-delay'] as const)
      expect(classifyFailure(new TransientFetchError(reason, 'x'), 1, 5).kind).toBe('retry');
  });

  it('reads Retry-After as seconds or an HTTP date, and ignores what is neither', () => {
    const now = Date.parse('2026-12-05T10:00:00Z');
    expect(parseRetryAfter('120', now)).toBe(120);
    expect(parseRetryAfter(' 0 ', now)).toBe(0);
    expect(parseRetryAfter('Sat, 05 Dec 2026 10:00:30 GMT', now)).toBe(30);
    expect(parseRetryAfter('Sat, 05 Dec 2026 09:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter(['7', '9'], now)).toBe(7);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter('-5', now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
    expect(parseRetryAfter('', now)).toBeUndefined();
  });

  it('backs off 5 s, 15 s, 45 s by attempt within ±20%, or as the server asked, at most 15 minutes', () => {
    const low = () => 0;
    const high = () => 0.999_999;
    const plain = new TransientFetchError('http-error', 'HTTP 503', 503);
    expect([1, 2, 3].map((a) => retryDelaySeconds(plain, a, low))).toEqual([4, 12, 36]);
    expect([1, 2, 3].map((a) => retryDelaySeconds(plain, a, high))).toEqual([6, 18, 54]);
    expect(retryDelaySeconds(plain, 10, high)).toBe(MAX_RETRY_DELAY_SECONDS);
    expect(retryDelaySeconds(new Error('ThrottlingException'), 1, low)).toBe(4);
    const asked = (s: number) => new TransientFetchError('http-error', 'HTTP 429', 429, s);
    expect(retryDelaySeconds(asked(30), 1, high)).toBe(30);
    expect(retryDelaySeconds(asked(0), 1, high)).toBe(1);
    expect(retryDelaySeconds(asked(86_400), 1, high)).toBe(MAX_RETRY_DELAY_SECONDS);
  });

  it('keeps the HTTP status of a failed fetch on its outcome', () => {
    expect(classifyFailure(new TransientFetchError('http-error', 'HTTP 503', 503), 3, 5)).toEqual({
      kind: 'outcome',
      outcome: 'http-error',
      detail: 'HTTP 503',
      httpStatus: 503,
    });
    expect(classifyFailure(new FetchOutcomeError('http-error', 'HTTP 404', 404), 1, 5)).toEqual({
      kind: 'outcome',
      outcome: 'http-error',
      detail: 'HTTP 404',
      httpStatus: 404,
    });
  });

  it('records a Crawl-delay that never fitted as its own outcome, inside the Outcome union', () => {
    const decision = classifyFailure(new TransientFetchError('crawl-delay', 'does not fit'), 3, 5);
    expect(decision).toMatchObject({ kind: 'outcome', outcome: 'crawl-delay-exceeded' });
    for (const outcome of Object.values(TRANSIENT_OUTCOME)) expect(OUTCOMES).toContain(outcome);
  });

  it('records a permanent failure at once, on the first receive', () => {
    expect(classifyFailure(new FetchOutcomeError('too-large', 'body passed 10 bytes'), 1, 5)).toMatchObject({
      kind: 'outcome',
      outcome: 'too-large',
    });
  });

  it('rethrows what is not a fetch failure, or a permanent error whose reason is not an outcome', () => {
    expect(classifyFailure(new Error('ThrottlingException'), 1, 5)).toEqual({ kind: 'rethrow' });
    expect(classifyFailure(new PermanentError('made-up', 'x'), 1, 5)).toEqual({ kind: 'rethrow' });
    expect(classifyFailure('a string', 1, 5)).toEqual({ kind: 'rethrow' });
  });

  it('derives the retries from maxReceiveCount and refuses one too small to hold them', () => {
    expect(transientRetries(5)).toBe(3);
    expect(transientRetries(10)).toBe(8);
    expect(transientRetries(MIN_RECEIVES)).toBe(1);
    expect(() => transientRetries(MIN_RECEIVES - 1)).toThrow(`must be at least ${MIN_RECEIVES}`);
    expect(() => transientRetries(4.5)).toThrow('(4.5) must be at least');
  });
});
