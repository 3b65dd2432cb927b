import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import {
  IdempotencyItemAlreadyExistsError,
  IdempotencyItemNotFoundError,
  IdempotencyRecordStatus,
} from '@aws-lambda-powertools/idempotency';
import { BasePersistenceLayer, IdempotencyRecord } from '@aws-lambda-powertools/idempotency/persistence';
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { type DynamoDBDocumentClient, GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import {
  OUTCOME_DETAIL_FIELDS,
  type Outcome,
  type OutcomeDetail,
  outcomeUpdate,
  URL_ATTR,
} from '../crawl/url-record';
import { expiresAt } from '../kit/ttl';

/** What a fetch attempt returns, and what its completed idempotency record stores on the URL record. */
export type CollectResult = { outcome: Outcome } & OutcomeDetail;

/** Attributes this layer owns on a URL record, next to the parser's claim and the crawler's outcome. */
const STATUS = URL_ATTR.idemStatus;
const EXPIRY = URL_ATTR.idemExpiry;
const LEASE = URL_ATTR.idemLeaseMs;
const OWNER = URL_ATTR.idemOwner;

/**
 * Who is taking a lease: one receive of one SQS message (its id and receive count), set around each
 * record's call by the handler. An SDK resend of a lease write whose response was lost (the write had
 * committed) carries the same owner, so it takes its own lease over instead of finding it "already in
 * progress" until it expires. Any other receive, even of the same message while the first is still
 * running, is held off by a live lease as before.
 */
export const leaseOwner = new AsyncLocalStorage<string>();

/**
 * A Powertools idempotency persistence layer that keeps the record on the URL's own item in the URLs
 * table, keyed by (crawlId, url) instead of a hash in a table of its own.
 *
 * Powertools still runs the protocol (INPROGRESS with a lease tied to the invocation's remaining time,
 * COMPLETED with the stored result replayed to redeliveries, the record removed when the function throws).
 * Keeping it on the URL item makes the COMPLETED write also the URL's outcome, so a page costs two
 * writes here (start, finish) instead of three (start, finish, outcome) in two tables; the claim
 * attributes the parser wrote stay, because every write is an UpdateItem.
 */
export class UrlRecordPersistenceLayer extends BasePersistenceLayer {
  constructor(
    private readonly tableName: string,
    private readonly client: DynamoDBDocumentClient,
    private readonly ttlSeconds: number,
  ) {
    super();
  }

  /** The natural key instead of a hash: the record must land on the URL's item. */
  protected override getHashedIdempotencyKey(data: unknown): string {
    const { crawlId, url } = (data ?? {}) as { crawlId?: unknown; url?: unknown };
    if (typeof crawlId !== 'string' || typeof url !== 'string' || !crawlId || !url)
      throw new Error('UrlRecordPersistenceLayer needs { crawlId, url } as the idempotent argument');
    return JSON.stringify([crawlId, url]);
  }

  private key(idempotencyKey: string): { crawlId: string; url: string } {
    const [crawlId, url] = JSON.parse(idempotencyKey) as [string, string];
    return { crawlId, url };
  }

  private toRecord(idempotencyKey: string, item: Record<string, unknown>): IdempotencyRecord {
    const response: Record<string, unknown> = { outcome: item.outcome };
    for (const f of OUTCOME_DETAIL_FIELDS) if (item[f] !== undefined) response[f] = item[f];
    return new IdempotencyRecord({
      idempotencyKey,
      status: item[STATUS] as IdempotencyRecord['status'],
      expiryTimestamp: item[EXPIRY] as number | undefined,
      inProgressExpiryTimestamp: item[LEASE] as number | undefined,
      responseData:
        item[STATUS] === IdempotencyRecordStatus.COMPLETED
          ? (response as IdempotencyRecord['responseData'])
          : undefined,
    });
  }

  protected async _getRecord(idempotencyKey: string): Promise<IdempotencyRecord> {
    const { Item } = await this.client.send(
      new GetCommand({ TableName: this.tableName, Key: this.key(idempotencyKey), ConsistentRead: true }),
    );
    if (!Item?.[STATUS]) throw new IdempotencyItemNotFoundError();
    return this.toRecord(idempotencyKey, Item);
  }

  protected async _putRecord(record: IdempotencyRecord): Promise<void> {
    const now = Date.now();
    try {
      await this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: this.key(record.idempotencyKey),
          UpdateExpression: `SET ${STATUS} = :inprogress, ${EXPIRY} = :expiry, ${LEASE} = :lease, ${OWNER} = :owner, ${URL_ATTR.expiresAt} = if_not_exists(${URL_ATTR.expiresAt}, :ttl)`,
          // Free, expired, an in-progress lease whose invocation has run out of time, or this message's own.
          ConditionExpression: `attribute_not_exists(${STATUS}) OR ${EXPIRY} < :now OR (${STATUS} = :inprogress AND (${LEASE} < :nowMs OR ${OWNER} = :owner))`,
          ExpressionAttributeValues: {
            ':inprogress': IdempotencyRecordStatus.INPROGRESS,
            ':owner': leaseOwner.getStore() ?? randomUUID(),
            ':expiry': record.expiryTimestamp,
            ':lease': record.inProgressExpiryTimestamp ?? now + 60_000,
            ':ttl': expiresAt(this.ttlSeconds, now),
            ':now': now / 1000,
            ':nowMs': now,
          },
        }),
      );
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
      // Without the old item Powertools reads the record itself: one strongly consistent read, on duplicates only.
      throw new IdempotencyItemAlreadyExistsError(`a fetch of ${record.idempotencyKey} is already recorded`);
    }
  }

  protected async _updateRecord(record: IdempotencyRecord): Promise<void> {
    const { outcome, ...detail } = (record.responseData ?? {}) as Partial<CollectResult>;
    if (!outcome) throw new Error(`the idempotent function returned no outcome for ${record.idempotencyKey}`);
    // One write: the Powertools completion and the URL's outcome together.
    const { sets, names, values } = outcomeUpdate(outcome, detail, this.ttlSeconds);
    await this.client.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: this.key(record.idempotencyKey),
        UpdateExpression: `SET ${[...sets, `${STATUS} = :status`, `${EXPIRY} = :expiry`].join(', ')} REMOVE ${LEASE}, ${OWNER}`,
        ExpressionAttributeValues: {
          ...values,
          ':status': record.getStatus(),
          ':expiry': record.expiryTimestamp,
        },
        ...(Object.keys(names).length > 0 ? { ExpressionAttributeNames: names } : {}),
      }),
    );
  }

  /**
   * The message failed on its last receive and goes to the DLQ: say so on the URL, unless a completed
   * fetch is already recorded there (the failure came after completion, e.g. a lost response), whose
   * outcome stays, so a redrive that replays it does not replay "dead-lettered".
   */
  async recordDeadLettered(key: { crawlId: string; url: string }, detail: OutcomeDetail): Promise<void> {
    const { sets, names, values } = outcomeUpdate('dead-lettered', detail, this.ttlSeconds);
    try {
      await this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: key,
          UpdateExpression: `SET ${sets.join(', ')}`,
          ConditionExpression: `attribute_not_exists(${STATUS}) OR ${STATUS} <> :completed`,
          ExpressionAttributeValues: { ...values, ':completed': IdempotencyRecordStatus.COMPLETED },
          ...(Object.keys(names).length > 0 ? { ExpressionAttributeNames: names } : {}),
        }),
      );
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
    }
  }

  /** The function threw: free the URL for the retry, keeping the claim and anything else on the item. */
  protected async _deleteRecord(record: IdempotencyRecord): Promise<void> {
    await this.client.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: this.key(record.idempotencyKey),
        UpdateExpression: `REMOVE ${STATUS}, ${EXPIRY}, ${LEASE}, ${OWNER}`,
      }),
    );
  }
}
