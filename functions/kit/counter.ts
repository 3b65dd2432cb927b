import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { type DynamoDBDocumentClient, UpdateCommand } from '@aws-sdk/lib-dynamodb';

/**
 * An atomic take-n counter on one DynamoDB item: the managed form of a Redis `DECR` on a stock counter.
 * Taking n succeeds only while at least n are left, so the counter never goes below zero whatever the
 * concurrency, and a failed take changes nothing.
 */
export interface CounterRef {
  readonly table: string;
  readonly key: Record<string, unknown>;
  /** The number attribute holding what is left. */
  readonly attribute: string;
}

/**
 * The take as a transaction item, to go beside the writes it pays for (a claim, a grant), so the count
 * and those writes commit together or not at all. On a failed condition the old item is returned, so the
 * caller can read how many are left with `leftOf`.
 */
export function takeItem(counter: CounterRef, n = 1) {
  return {
    Update: {
      TableName: counter.table,
      Key: counter.key,
      UpdateExpression: 'SET #left = #left - :n',
      ConditionExpression: '#left >= :n',
      ExpressionAttributeNames: { '#left': counter.attribute },
      ExpressionAttributeValues: { ':n': n },
      ReturnValuesOnConditionCheckFailure: 'ALL_OLD' as const,
    },
  };
}

/** How many are left according to an item read back from a failed take (wire or plain form); 0 if absent. */
export function leftOf(
  counter: Pick<CounterRef, 'attribute'>,
  item: Record<string, unknown> | undefined,
): number {
  const value = item?.[counter.attribute] as { N?: string } | number | string | undefined;
  const raw = typeof value === 'object' ? value?.N : value;
  const left = Number(raw ?? 0);
  return Number.isFinite(left) ? Math.max(0, left) : 0;
}

/** Take n on its own: what is left afterwards, or undefined when fewer than n were left (nothing taken). */
export async function take(
  client: DynamoDBDocumentClient,
  counter: CounterRef,
  n = 1,
): Promise<number | undefined> {
  const { Update } = takeItem(counter, n);
  try {
    const out = await client.send(new UpdateCommand({ ...Update, ReturnValues: 'UPDATED_NEW' }));
    return Number(out.Attributes?.[counter.attribute]);
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException) return undefined;
    throw error;
  }
}
