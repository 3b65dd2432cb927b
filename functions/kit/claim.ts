import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { type DynamoDBDocumentClient, PutCommand } from '@aws-sdk/lib-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import type { Statement } from './statement-batcher';

/**
 * Claim-once: create an item only where none exists under its key, the managed form of a Redis
 * `SET key NX`. A redelivered message that makes the same claim finds the first one and is told so, with
 * the item that won, so it can replay that result instead of doing the work again.
 */
export interface Claim {
  readonly table: string;
  /** The full item, key attributes included. */
  readonly item: Record<string, unknown>;
  /** Any one key attribute of the table (the partition key): its absence means no item exists. */
  readonly keyAttribute: string;
}

/** The claim as a transaction item, to commit together with other writes (a counter take). */
export function claimItem(claim: Claim) {
  return {
    Put: {
      TableName: claim.table,
      Item: claim.item,
      ConditionExpression: 'attribute_not_exists(#k)',
      ExpressionAttributeNames: { '#k': claim.keyAttribute },
      ReturnValuesOnConditionCheckFailure: 'ALL_OLD' as const,
    },
  };
}

export type ClaimResult =
  | { readonly claimed: true }
  | { readonly claimed: false; readonly existing: Record<string, unknown> };

/** Make the claim on its own: claimed, or the item that was already there. */
export async function claimOnce(client: DynamoDBDocumentClient, claim: Claim): Promise<ClaimResult> {
  const { Put } = claimItem(claim);
  try {
    await client.send(new PutCommand(Put));
    return { claimed: true };
  } catch (error) {
    if (!(error instanceof ConditionalCheckFailedException)) throw error;
    // ALL_OLD puts the winning item on the exception, in wire form: the document client does not convert errors.
    const item = (error as { Item?: Parameters<typeof unmarshall>[0] }).Item;
    return { claimed: false, existing: item ? unmarshall(item) : {} };
  }
}

/**
 * The claim as a PartiQL INSERT, for a StatementBatcher: an INSERT fails (DuplicateItem) wherever an item
 * exists under its key. It does not say which item won, so a caller that needs it reads it back or makes
 * the claim again with `claimOnce`. Attributes with an undefined value are left out, as the document client
 * does.
 */
export function claimStatement(claim: Claim): Statement {
  const fields = Object.entries(claim.item).filter(([, value]) => value !== undefined);
  return {
    Statement: `INSERT INTO "${claim.table}" VALUE {${fields.map(([name]) => `'${name}': ?`).join(', ')}}`,
    Parameters: fields.map(([, value]) => value),
  };
}
