import { isOutcome, type Outcome } from '../crawl/url-record';
import { PermanentError, RetryableError } from '../kit/errors';

/**
 * Why a fetch may succeed later. Each has the outcome recorded when its retries run out, checked
 * exhaustively by the compiler.
 */
export const TRANSIENT_OUTCOME = {
  'dns-error': 'dns-error',
  timeout: 'timeout',
  'http-error': 'http-error',
  'network-error': 'network-error',
  'crawl-delay': 'crawl-delay-exceeded',
} as const satisfies Record<string, Outcome>;
export type TransientReason = keyof typeof TRANSIENT_OUTCOME;

/** A failure worth trying again on a later receive: timeouts, resets, 5xx, 429, a Crawl-delay that did not fit. */
export class TransientFetchError extends RetryableError {
  readonly reason: TransientReason;
  readonly status?: number;
  constructor(reason: TransientReason, message: string, status?: number) {
    super(message);
    this.name = 'TransientFetchError';
    this.reason = reason;
    this.status = status;
  }
}

/** A fetch that ended in a recorded outcome rather than a page. */
export class FetchOutcomeError extends PermanentError {
  declare readonly reason: Outcome;
  readonly status?: number;
  constructor(reason: Outcome, message: string, status?: number) {
    super(reason, message);
    this.name = 'FetchOutcomeError';
    this.status = status;
  }
}

/**
 * Receives a transient fetch failure does not get: the last two of the queue's maxReceiveCount are kept
 * for the pipeline's own failures (a throttled write), so a slow site alone never sends a URL to the DLQ.
 */
export const RESERVED_RECEIVES = 2;
/** The smallest maxReceiveCount the crawler's source queue may have; the stack checks it at synth. */
export const MIN_RECEIVES = RESERVED_RECEIVES + 1;

/** The receive up to which a transient failure is retried, derived from the source queue's maxReceiveCount. */
export function transientRetries(maxReceiveCount: number): number {
  if (!Number.isInteger(maxReceiveCount) || maxReceiveCount < MIN_RECEIVES)
    throw new Error(
      `maxReceiveCount (${maxReceiveCount}) must be at least ${MIN_RECEIVES}: transient fetch retries need ${MIN_RECEIVES - RESERVED_RECEIVES}`,
    );
  return maxReceiveCount - RESERVED_RECEIVES;
}

export type FailureDecision =
  /** Throw: SQS redelivers the record after its visibility timeout. */
  | { readonly kind: 'retry'; readonly reason: TransientReason }
  /** Record this outcome on the URL and report the record done. */
  | {
      readonly kind: 'outcome';
      readonly outcome: Outcome;
      readonly detail: string;
      readonly httpStatus?: number;
    }
  /** Not a fetch failure (a bug, the pipeline's own dependency): throw, and let the queue's retries decide. */
  | { readonly kind: 'rethrow' };

/**
 * What to do with a failed fetch, on its `receives`-th receive of a queue allowing `maxReceiveCount`. Pure,
 * so every branch is unit-tested without a network or a queue.
 */
export function classifyFailure(error: unknown, receives: number, maxReceiveCount: number): FailureDecision {
  if (error instanceof TransientFetchError) {
    if (receives < transientRetries(maxReceiveCount)) return { kind: 'retry', reason: error.reason };
    return withStatus(TRANSIENT_OUTCOME[error.reason], error.message, error.status);
  }
  if (error instanceof PermanentError && isOutcome(error.reason))
    return withStatus(error.reason, error.message, (error as { status?: number }).status);
  return { kind: 'rethrow' };
}

function withStatus(outcome: Outcome, detail: string, status: number | undefined): FailureDecision {
  return { kind: 'outcome', outcome, detail, ...(status ? { httpStatus: status } : {}) };
}
