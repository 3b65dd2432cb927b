import { IdempotencyConfig, makeIdempotent } from '@aws-lambda-powertools/idempotency';
import { DynamoDBPersistenceLayer } from '@aws-lambda-powertools/idempotency/dynamodb';
import type { Context } from 'aws-lambda';
import { dynamodb } from './clients';

export interface IdempotentOptions {
  /** A table made with `PipelineStack.addIdempotencyTable` (key `id`, TTL on `expiration`). */
  readonly tableName: string;
  /** How long a completed call's result is replayed to repeats of it. */
  readonly expiresAfterSeconds: number;
  /**
   * JMESPath to the part of the argument that identifies a call, e.g. `[eventId, userId]`.
   * @default - the whole argument
   */
  readonly key?: string;
}

/**
 * Run `fn` at most once per key: a repeat (a redelivered message, a retried request) within the window gets
 * the first call's result without running it, and a repeat while the first still runs is refused
 * (IdempotencyAlreadyInProgressError: thrown, so SQS retries it later). Powertools does the protocol; this
 * wires it to the kit's DynamoDB client, so it runs against AWS, LocalStack and the sandbox alike.
 *
 * For effects that are themselves DynamoDB writes, a conditional write (claim.ts) is cheaper: one write
 * instead of two. This is for side effects outside DynamoDB (an e-mail, a payment, a third-party API).
 * Call `registerContext` with each invocation's context, so a lease never outlives the invocation.
 */
export function idempotent<A, R>(fn: (arg: A) => Promise<R>, options: IdempotentOptions) {
  const config = new IdempotencyConfig({
    expiresAfterSeconds: options.expiresAfterSeconds,
    ...(options.key ? { eventKeyJmesPath: options.key } : {}),
  });
  const persistenceStore = new DynamoDBPersistenceLayer({
    tableName: options.tableName,
    awsSdkV3Client: dynamodb,
  });
  const run = makeIdempotent(fn, { persistenceStore, config });
  return Object.assign(run, { registerContext: (context: Context) => config.registerLambdaContext(context) });
}
