import { describe, expect, it } from 'vitest';
import { OUTCOMES } from '../../functions/crawl/url-record';
import {
  classifyFailure,
  FetchOutcomeError,
  MIN_RECEIVES,
  TRANSIENT_OUTCOME,
  TransientFetchError,
  transientRetries,
} from '../../functions/crawler/failures';
import { PermanentError } from '../../functions/kit/errors';

describe('the crawler’s failure classification', () => {
  it('retries a transient failure while receives are left for it, then records its outcome', () => {
    const error = new TransientFetchError('timeout', 'fetch did not finish within 10000 ms');
    // maxReceiveCount 5: receives 1 and 2 retry; 3 (the last before the two kept for the pipeline) records.
    expect(classifyFailure(error, 1, 5)).toEqual({ kind: 'retry', reason: 'timeout' });
    expect(classifyFailure(error, 2, 5)).toEqual({ kind: 'retry', reason: 'timeout' });
    expect(classifyFailure(error, 3, 5)).toEqual({
      kind: 'outcome',
      outcome: 'timeout',
      detail: 'fetch did not finish within 10000 ms',
    });
    expect(classifyFailure(error, 5, 5).kind).toBe('outcome');
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
