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
  /** How long the server asked us to wait (its Retry-After), in seconds. */
  readonly retryAfterSeconds?: number;
  constructor(reason: TransientReason, message: string, status?: number, retryAfterSeconds?: number) {
    super(message);
    this.name = 'TransientFetchError';
    this.reason = reason;
    this.status = status;
    if (retryAfterSeconds !== undefined) this.retryAfterSeconds = retryAfterSeconds;
  }
}

/**
 * A Retry-After header's wait in seconds (RFC 9110 §10.2.3: delay-seconds or an HTTP date), or undefined
 * when absent or unreadable. Two forms and a clamp, so no library.
 */
export function parseRetryAfter(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const raw = (Array.isArray(value) ? value[0] : value)?.trim();
  if (!raw) return undefined;
  if (/^\d+$/.test(raw)) return Number(raw);
  // An HTTP date names its month; V8's Date.parse would also read "-5" as a year.
  if (!/[A-Za-z]{3}/.test(raw)) return undefined;
  const at = Date.parse(raw);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - now) / 1000));
}

/** The longest wait between a URL's attempts, whatever a server asks: a retry is still owed within the crawl. */
export const MAX_RETRY_DELAY_SECONDS = 900;

/**
 * When a URL that failed in place (its host's group locked behind it) is tried again, in seconds: the
 * server's Retry-After when it gave one, otherwise 5 s, 15 s, 45 s … by attempt, within ±20% so the hosts
 * that failed together do not come back together; never more than `MAX_RETRY_DELAY_SECONDS`.
 */
export function retryDelaySeconds(error: unknown, attempt: number, random = Math.random): number {
  const asked = error instanceof TransientFetchError ? error.retryAfterSeconds : undefined;
  if (asked !== undefined) return Math.min(MAX_RETRY_DELAY_SECONDS, Math.max(1, asked));
  const base = 5 * 3 ** Math.max(0, attempt - 1);
  return Math.min(MAX_RETRY_DELAY_SECONDS, Math.round(base * (0.8 + 0.4 * random())));
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
  /** Throw: SQS redelivers the record after its retry delay, and its host's group waits for it. */
  | { readonly kind: 'retry'; readonly reason: TransientReason }
  /**
   * Send the URL to the back of its host's group and report the record done: the page itself timed out,
   * so the host's other URLs go on instead of waiting behind it.
   */
  | { readonly kind: 'requeue'; readonly reason: TransientReason }
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
 * What to do with a failed fetch on its `attempt`-th attempt (its message's receives, plus the attempts of
 * the messages it was requeued from), from a queue allowing `maxReceiveCount`. Pure, so every branch is
 * unit-tested without a network or a queue.
 *
 * A timeout goes to the back of its host's group: it is most often the page's own (a slow report, a tarpit
 * URL), and the host's other URLs go on meanwhile, still inside the host's lanes and Crawl-delay; a host
 * that times out on every page gets as many attempts either way. Every other transient failure (429, 5xx,
 * a reset, DNS, a Crawl-delay that did not fit) speaks for the host, whose group then waits, the polite
 * answer.
 */
export function classifyFailure(error: unknown, attempt: number, maxReceiveCount: number): FailureDecision {
  if (error instanceof TransientFetchError) {
    if (attempt < transientRetries(maxReceiveCount))
      return { kind: error.reason === 'timeout' ? 'requeue' : 'retry', reason: error.reason };
    return withStatus(TRANSIENT_OUTCOME[error.reason], error.message, error.status);
  }
  if (error instanceof PermanentError && isOutcome(error.reason))
    return withStatus(error.reason, error.message, (error as { status?: number }).status);
  return { kind: 'rethrow' };
}

function withStatus(outcome: Outcome, detail: string, status: number | undefined): FailureDecision {
  return { kind: 'outcome', outcome, detail, ...(status ? { httpStatus: status } : {}) };
}
