/**
 * Errors fall in two kinds, and every throw site picks one:
 * - RetryableError: transient (throttling, a 5xx from a dependency, a timeout). Thrown out of the record
 *   handler so SQS redelivers the record after its visibility timeout, up to maxReceiveCount.
 * - PermanentError: the input can never succeed. The record's outcome is recorded and it is not retried.
 */
export class RetryableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RetryableError';
  }
}

export class PermanentError extends Error {
  /** Machine-readable reason, stored as the outcome or DLQ failure reason. */
  readonly reason: string;
  constructor(reason: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PermanentError';
    this.reason = reason;
  }
}

/** A message that does not parse or validate: forwarded to the DLQ at once, never retried. */
export class InvalidMessageError extends PermanentError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('invalid-message', message, options);
    this.name = 'InvalidMessageError';
  }
}

/** True for AWS SDK errors that a retry can fix. */
export function isTransientAwsError(error: unknown): boolean {
  const e = error as { name?: string; $retryable?: unknown; $metadata?: { httpStatusCode?: number } };
  if (e?.$retryable) return true;
  const status = e?.$metadata?.httpStatusCode ?? 0;
  return (
    status >= 500 ||
    status === 429 ||
    /Throttl|ProvisionedThroughputExceeded|RequestLimitExceeded/.test(e?.name ?? '')
  );
}
