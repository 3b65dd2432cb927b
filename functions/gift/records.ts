import { TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import {
  type DynamoDBDocumentClient,
  GetCommand,
  QueryCommand,
  TransactWriteCommand,
} from '@aws-sdk/lib-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { type ClaimResult, claimItem, claimOnce } from '../kit/claim';
import { type CounterRef, takeItem } from '../kit/counter';
import { RetryableError } from '../kit/errors';
import { expiresAt } from '../kit/ttl';

/**
 * The gift event's three records, and this module is their owner (attribute names, TTL, reads, writes):
 * - the stock record, one per event in the stock table: `left`, the coupons not yet granted, a kit counter;
 * - the grant record, one per (eventId, userId) in the grants table: the entry's decision, `coupon` or
 *   `sold-out`, made once;
 * - the notification record, one per coupon in the notifications table.
 * Grants and notifications expire by `expiresAt` after the stack's recordTtl.
 */
/** `unknown-event`: the entry names an event that was never opened (no stock record). */
export type Decision = 'coupon' | 'sold-out' | 'unknown-event';

export interface GrantRecord {
  readonly eventId: string;
  readonly userId: string;
  readonly decision: Decision;
  /** Set for a coupon. */
  readonly couponId?: string;
  readonly answers: Record<string, string>;
  readonly decidedAt: string;
}

export const stockCounter = (table: string, eventId: string): CounterRef => ({
  table,
  key: { eventId },
  attribute: 'left',
});

/** Open an event with `stock` coupons. Refuses to reopen one: its stock would be handed out twice. */
export async function openEvent(
  client: DynamoDBDocumentClient,
  table: string,
  eventId: string,
  stock: number,
): Promise<void> {
  if (!Number.isInteger(stock) || stock < 0)
    throw new Error(`stock must be a whole number of at least 0, got ${stock}`);
  const result = await claimOnce(client, {
    table,
    keyAttribute: 'eventId',
    item: { eventId, left: stock, stock, openedAt: new Date().toISOString() },
  });
  if (!result.claimed) throw new Error(`event ${eventId} is already open; its stock is kept`);
}

/** Coupons not yet granted, read consistently; undefined for an event never opened. */
export async function stockLeft(
  client: DynamoDBDocumentClient,
  table: string,
  eventId: string,
): Promise<number | undefined> {
  const { Item } = await client.send(
    new GetCommand({ TableName: table, Key: { eventId }, ConsistentRead: true }),
  );
  return Item ? Number(Item.left) : undefined;
}

export type GrantOutcome =
  /** This call granted the coupon: the grant and the stock take committed together. */
  | { readonly kind: 'granted'; readonly grant: GrantRecord }
  /** The entry was decided before (a redelivery, a concurrent delivery): its decision, unchanged. */
  | { readonly kind: 'decided'; readonly grant: GrantRecord }
  /** No stock was left: the caller records the sold-out decision. */
  | { readonly kind: 'no-stock' };

/**
 * Grant a coupon to an entry, at most once and only while stock lasts: the grant record is created (no
 * grant yet for this user and event) and one unit of stock is taken (at least one left) in one
 * transaction, so there is never a coupon without its unit of stock, nor a unit taken twice for one user.
 */
export async function grantCoupon(
  client: DynamoDBDocumentClient,
  tables: { stock: string; grants: string },
  grant: Omit<GrantRecord, 'decision' | 'decidedAt'> & { couponId: string },
  ttlSeconds: number,
): Promise<GrantOutcome> {
  const record: GrantRecord = { ...grant, decision: 'coupon', decidedAt: new Date().toISOString() };
  try {
    await client.send(
      new TransactWriteCommand({
        TransactItems: [
          claimItem({
            table: tables.grants,
            keyAttribute: 'eventId',
            item: { ...record, expiresAt: expiresAt(ttlSeconds) },
          }),
          takeItem(stockCounter(tables.stock, grant.eventId)),
        ],
      }),
    );
    return { kind: 'granted', grant: record };
  } catch (error) {
    if (!(error instanceof TransactionCanceledException)) throw error;
    const [claim, take] = error.CancellationReasons ?? [];
    if (claim?.Code === 'ConditionalCheckFailed')
      return { kind: 'decided', grant: unmarshall(claim.Item ?? {}) as GrantRecord };
    if (take?.Code === 'ConditionalCheckFailed') return { kind: 'no-stock' };
    // A conflict with another transaction on the stock item, or a throttle: nothing was written.
    throw new RetryableError(
      `grant cancelled (${(error.CancellationReasons ?? []).map((r) => r.Code).join(',')})`,
      { cause: error },
    );
  }
}

/**
 * Record a decision without a coupon (sold out, unknown event), unless the entry was decided meanwhile (then that decision stands: a
 * coupon granted by a concurrent delivery is never turned into sold-out).
 */
export async function recordRefusal(
  client: DynamoDBDocumentClient,
  table: string,
  entry: Pick<GrantRecord, 'eventId' | 'userId' | 'answers'>,
  decision: Exclude<Decision, 'coupon'>,
  ttlSeconds: number,
): Promise<ClaimResult> {
  return claimOnce(client, {
    table,
    keyAttribute: 'eventId',
    item: {
      ...entry,
      decision,
      decidedAt: new Date().toISOString(),
      expiresAt: expiresAt(ttlSeconds),
    } satisfies GrantRecord & { expiresAt: number },
  });
}

/** Every decision of an event, read consistently. */
export async function listGrants(
  client: DynamoDBDocumentClient,
  table: string,
  eventId: string,
): Promise<GrantRecord[]> {
  const items: GrantRecord[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const out = await client.send(
      new QueryCommand({
        TableName: table,
        KeyConditionExpression: 'eventId = :e',
        ExpressionAttributeValues: { ':e': eventId },
        ConsistentRead: true,
        ExclusiveStartKey: start,
      }),
    );
    items.push(...((out.Items ?? []) as GrantRecord[]));
    start = out.LastEvaluatedKey;
  } while (start);
  return items;
}

/** Record the one notification of a coupon; a second delivery of the same coupon finds it and does nothing. */
export async function recordNotification(
  client: DynamoDBDocumentClient,
  table: string,
  coupon: { couponId: string; eventId: string; userId: string },
  ttlSeconds: number,
): Promise<'notified' | 'already-notified'> {
  const result = await claimOnce(client, {
    table,
    keyAttribute: 'couponId',
    item: { ...coupon, notifiedAt: new Date().toISOString(), expiresAt: expiresAt(ttlSeconds) },
  });
  return result.claimed ? 'notified' : 'already-notified';
}

/** How many of these coupons have their notification recorded (consistent reads, one per coupon). */
export async function countNotifications(
  client: DynamoDBDocumentClient,
  table: string,
  couponIds: readonly string[],
): Promise<number> {
  let n = 0;
  for (const couponId of couponIds) {
    const { Item } = await client.send(
      new GetCommand({ TableName: table, Key: { couponId }, ConsistentRead: true }),
    );
    if (Item) n++;
  }
  return n;
}
