import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import {
  IdempotencyItemAlreadyExistsError,
  IdempotencyItemNotFoundError,
  IdempotencyRecordStatus,
} from '@aws-lambda-powertools/idempotency';
import { BasePersistenceLayer, IdempotencyRecord } from '@aws-lambda-powertools/idempotency/persistence';
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { type DynamoDBDocumentClient, GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import {
  fetchLogItem,
  OUTCOME_DETAIL_FIELDS,
  type Outcome,
  type OutcomeDetail,
  outcomeFields,
  outcomeUpdate,
  readUrlRecords,
  URL_ATTR,
} from '../crawl/url-record';
import { type Statement, StatementBatcher } from '../kit/statement-batcher';
import { expiresAt } from '../kit/ttl';

/** What a fetch attempt returns, and what its completed idempotency record stores on the URL record. */
export type CollectResult = { outcome: Outcome } & OutcomeDetail;

/** Attributes this layer owns on a URL record, next to the parser's claim and the crawler's outcome. */
const STATUS = URL_ATTR.idemStatus;
const EXPIRY = URL_ATTR.idemExpiry;
const LEASE = URL_ATTR.idemLeaseMs;
const OWNER = URL_ATTR.idemOwner;

/** Attributes of a frontier group's lease item. */
const GROUP = { until: 'leaseUntil', owner: 'leaseOwner', ids: 'leaseMessageIds' } as const;

type UrlKey = { crawlId: string; url: string };
const keyString = (k: UrlKey) => JSON.stringify([k.crawlId, k.url]);

/** A URL's completion: its outcome and the Powertools record's status and expiry. */
interface Completion {
  readonly key: UrlKey;
  readonly outcome: Outcome;
  readonly detail: OutcomeDetail;
  readonly idem: Record<string, unknown>;
}

/** One receive of one FIFO message group's records in one invocation, as the handler hands it over. */
export interface GroupAttemptInput {
  /** The message group: the host (frontierGroupId). */
  readonly groupId: string;
  /** This receive of the group's first record, `${messageId}:${receiveCount}`: the lease's owner. */
  readonly owner: string;
  /** The message ids of this receive's records of the group, oldest first. */
  readonly messageIds: readonly string[];
  /** The URL records the group's records are about (records with an invalid URL left out). */
  readonly keys: readonly UrlKey[];
  /** When this invocation's time runs out (epoch ms): the lease lasts no longer. */
  readonly deadlineMs: number;
  /**
   * No other receive can get these records before the deadline (see receivedExclusively): the attempt
   * holds the group without writing a lease. Left out, the lease is taken.
   */
  readonly exclusive?: boolean;
  /**
   * URL records an exclusive attempt need not read: every message of this receive for them is a first send
   * (FrontierMessage's `fresh`) on its first receive, so no completion can be on them.
   */
  readonly unread?: readonly UrlKey[];
}

/**
 * The URLs whose every message in this receive is their first send (FrontierMessage's `fresh`, not a
 * requeued attempt) on its first receive: their records need not be read (GroupAttemptInput's `unread`).
 */
export function firstSendKeys(
  messages: ReadonlyArray<{
    key: UrlKey;
    payload: { fresh?: true; attempts?: number };
    receiveCount: number;
  }>,
): UrlKey[] {
  const first = new Map<string, UrlKey | undefined>();
  for (const { key, payload, receiveCount } of messages) {
    const id = keyString(key);
    const firstSend = payload.fresh === true && payload.attempts === undefined && receiveCount === 1;
    const othersFirstSends = !first.has(id) || first.get(id) !== undefined;
    first.set(id, firstSend && othersFirstSends ? key : undefined);
  }
  return [...first.values()].filter((key) => key !== undefined);
}

interface GroupState {
  /** This attempt holds the group; when not, `heldUntil` is when the holder's lease runs out. */
  readonly held: boolean;
  /** The group is held by a lease item this attempt wrote, to be given back. */
  readonly leased: boolean;
  /** No other receive can get the group's records while this attempt runs (GroupAttemptInput.exclusive). */
  readonly exclusive: boolean;
  readonly heldUntil: number;
  /** The group's URL records, read strongly consistent after the lease was asked for, by keyString. */
  readonly records: Map<string, Record<string, unknown>>;
}

/**
 * The crawler's mutual exclusion, per FIFO message group (the host) rather than per URL.
 *
 * FIFO already hands a group's messages to one consumer at a time, in order; the one way two invocations
 * get the same records is a visibility timeout running out while the first still works on them. Then SQS
 * hands the group's oldest undeleted message, which is the first one's, to the second. So the first
 * invocation leases the group with the ids of the messages it received, and a later receive whose first
 * message is among them is held off while the lease is live; a receive that starts with any other message
 * comes after the holder's messages were deleted and takes the lease over. A lease lasts the invocation's
 * remaining time and is released when the group's records are done.
 *
 * A first receive whose visibility timeout outlasts the invocation (the common case, as the timeout is
 * 6 × the function's) cannot meet a second receive of its messages while it runs, so it takes no lease.
 *
 * Cost: a read of the group's URL records (strongly consistent after a lease), plus two writes per group
 * per batch (take, release) where a lease is needed, where Powertools' per-record protocol writes
 * INPROGRESS and COMPLETED for every URL. The COMPLETED write stays, and is the URL's outcome; for a fetched URL the parser makes it,
 * in the write that stores the page.
 */
export class GroupAttempt {
  private state?: Promise<GroupState>;

  constructor(
    private readonly table: string,
    private readonly client: DynamoDBDocumentClient,
    readonly input: GroupAttemptInput,
    private readonly ttlSeconds: number,
  ) {}

  private leaseKey() {
    // '#' cannot start a crawl id (safeId), so a lease item never mixes with a crawl's URL records.
    return { crawlId: `#frontier-group#${this.input.groupId}`, url: '#lease' };
  }

  /** Take the lease (or learn who holds it) and read the group's URL records; once per attempt. */
  ready(): Promise<GroupState> {
    this.state ??= this.take();
    return this.state;
  }

  private async take(): Promise<GroupState> {
    const exclusive = this.input.exclusive === true;
    const { held, heldUntil } = exclusive
      ? { held: true, heldUntil: this.input.deadlineMs }
      : await this.lease();
    // Read after the lease: whatever a previous holder completed is visible to a consistent read. A first
    // receive that takes no lease reads at half the price (eventually consistent): no receive of its own
    // messages came before it, and a completion it must replay (a message sent for the URL again, at least
    // the FIFO dedup window later, or redriven from the DLQ) was written minutes before.
    // An exclusive attempt also leaves out the records of URLs sent for the first time, which hold nothing
    // to replay: only their claim.
    const unread = new Set(exclusive ? (this.input.unread ?? []).map(keyString) : []);
    const unique = [...new Map(this.input.keys.map((k) => [keyString(k), k])).values()].filter(
      (k) => !unread.has(keyString(k)),
    );
    const items = await readUrlRecords(this.table, unique, { consistent: !exclusive }, this.client);
    return {
      held,
      leased: !exclusive && held,
      exclusive,
      heldUntil,
      records: new Map(items.map((i) => [keyString(i as UrlKey), i])),
    };
  }

  /** Write the group's lease, or learn until when another receive holds it. */
  private async lease(): Promise<{ held: boolean; heldUntil: number }> {
    const now = Date.now();
    try {
      await this.client.send(
        new UpdateCommand({
          TableName: this.table,
          Key: this.leaseKey(),
          UpdateExpression: `SET ${GROUP.until} = :until, ${GROUP.owner} = :owner, ${GROUP.ids} = :ids, ${URL_ATTR.expiresAt} = :ttl`,
          // Free, run out, this very receive's (an SDK resend), or a lease on messages that are gone.
          ConditionExpression: `attribute_not_exists(${GROUP.until}) OR ${GROUP.until} < :now OR ${GROUP.owner} = :owner OR NOT contains(${GROUP.ids}, :first)`,
          ExpressionAttributeValues: {
            ':until': this.input.deadlineMs,
            ':owner': this.input.owner,
            ':ids': new Set(this.input.messageIds),
            ':first': this.input.messageIds[0],
            ':ttl': expiresAt(this.ttlSeconds, now),
            ':now': now,
          },
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      );
      return { held: true, heldUntil: this.input.deadlineMs };
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
      const item = (error as { Item?: Record<string, { N?: string }> }).Item;
      return { held: false, heldUntil: Number(item?.[GROUP.until]?.N ?? now + 60_000) };
    }
  }

  /**
   * Fetched URLs whose completion this attempt left to the parser's store of the page (see
   * `_updateRecord`), with the completion, in case their records come back before the page is stored.
   */
  readonly deferred = new Map<string, Completion>();

  /** Record a URL completed in this attempt, so a second message for it in the group replays it. */
  async completed(key: UrlKey, item: Record<string, unknown>): Promise<void> {
    const state = await this.ready();
    state.records.set(keyString(key), { ...(state.records.get(keyString(key)) ?? {}), ...item });
  }

  /** Give the lease back once the group's records are done (a failure to do so only delays the next one). */
  async release(): Promise<void> {
    if (!this.state) return;
    const state = await this.state.catch(() => undefined);
    if (!state?.leased) return;
    try {
      await this.client.send(
        new UpdateCommand({
          TableName: this.table,
          Key: this.leaseKey(),
          UpdateExpression: `REMOVE ${GROUP.until}, ${GROUP.owner}, ${GROUP.ids}`,
          ConditionExpression: `${GROUP.owner} = :owner`,
          ExpressionAttributeValues: { ':owner': this.input.owner },
        }),
      );
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
    }
  }
}

/**
 * A URL's completion as a PartiQL UPDATE: the given attributes set (undefined ones left out), the per-URL
 * lease attributes removed, on a record that exists and has its expiry or a stored page.
 */
function completionStatement(table: string, key: UrlKey, fields: Record<string, unknown>): Statement {
  const set = Object.entries(fields).filter(([, value]) => value !== undefined);
  return {
    Statement: [
      `UPDATE "${table}"`,
      ...set.map(([name]) => `SET "${name}" = ?`),
      `REMOVE "${LEASE}" REMOVE "${OWNER}"`,
      // A record with a stored page has no expiry, and must not be given one: the page is kept.
      `WHERE "crawlId" = ? AND "url" = ? AND (attribute_exists("${URL_ATTR.expiresAt}") OR attribute_exists("${URL_ATTR.fetchedAt}"))`,
    ].join(' '),
    Parameters: [...set.map(([, value]) => value), key.crawlId, key.url],
  };
}

/** The group attempt the current record runs in: set by `runGroup` around a group's records. */
const currentGroup = new AsyncLocalStorage<GroupAttempt>();

/** Run a group's records inside its attempt, and release the lease after them, whatever they did. */
export async function runGroup<T>(attempt: GroupAttempt, run: () => Promise<T>): Promise<T> {
  try {
    return await currentGroup.run(attempt, run);
  } finally {
    await attempt.release().catch(() => undefined);
  }
}

/**
 * A Powertools idempotency persistence layer that keeps the record on the URL's own item in the URLs
 * table, keyed by (crawlId, url) instead of a hash in a table of its own, with the group lease above in
 * place of a per-URL INPROGRESS write.
 *
 * Powertools still runs the protocol: a URL whose record is COMPLETED replays its stored outcome without
 * running again; one another attempt is working on is refused as in progress (so SQS retries it later);
 * otherwise the function runs and its result is written as COMPLETED, which is also the URL's outcome (for a
 * fetched URL, by the parser's store of the page: see `_updateRecord`). The claim attributes the parser
 * wrote stay, because every write is an UpdateItem. An INPROGRESS lease left on a URL record by the per-URL
 * protocol (an older version of this layer, mid-deploy) is still honoured.
 */
export class UrlRecordPersistenceLayer extends BasePersistenceLayer {
  /** The completions of records that finish together: one BatchExecuteStatement instead of one write each. */
  private readonly completions: StatementBatcher;

  constructor(
    private readonly tableName: string,
    private readonly client: DynamoDBDocumentClient,
    private readonly ttlSeconds: number,
  ) {
    super();
    this.completions = new StatementBatcher(client);
  }

  /** The group attempt of the current record; made by the handler for each group of a batch. */
  group(input: GroupAttemptInput): GroupAttempt {
    return new GroupAttempt(this.tableName, this.client, input, this.ttlSeconds);
  }

  /** The natural key instead of a hash: the record must land on the URL's item. */
  protected override getHashedIdempotencyKey(data: unknown): string {
    const { crawlId, url } = (data ?? {}) as { crawlId?: unknown; url?: unknown };
    if (typeof crawlId !== 'string' || typeof url !== 'string' || !crawlId || !url)
      throw new Error('UrlRecordPersistenceLayer needs { crawlId, url } as the idempotent argument');
    return keyString({ crawlId, url });
  }

  private key(idempotencyKey: string): UrlKey {
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

  /**
   * "Start": no write. The URL may run if its record is not completed, no per-URL lease from another
   * attempt is live on it, and this attempt holds the group's lease; otherwise the existing record is
   * handed to Powertools, which replays a completed one and refuses an in-progress one.
   */
  protected async _putRecord(record: IdempotencyRecord): Promise<void> {
    const attempt = currentGroup.getStore();
    if (!attempt)
      throw new Error('UrlRecordPersistenceLayer: run the idempotent function inside runGroup(group, …)');
    const state = await attempt.ready();
    const item = state.records.get(record.idempotencyKey) ?? {};
    const now = Date.now();
    const completed =
      item[STATUS] === IdempotencyRecordStatus.COMPLETED && Number(item[EXPIRY] ?? 0) >= now / 1000;
    const leasedPerUrl =
      item[STATUS] === IdempotencyRecordStatus.INPROGRESS && Number(item[LEASE] ?? 0) >= now;
    if (completed || leasedPerUrl || !state.held) {
      const existing =
        completed || leasedPerUrl
          ? this.toRecord(record.idempotencyKey, item)
          : new IdempotencyRecord({
              idempotencyKey: record.idempotencyKey,
              status: IdempotencyRecordStatus.INPROGRESS,
              expiryTimestamp: record.expiryTimestamp,
              inProgressExpiryTimestamp: state.heldUntil,
            });
      throw new IdempotencyItemAlreadyExistsError(
        `a fetch of ${record.idempotencyKey} is ${completed ? 'already recorded' : 'in progress elsewhere'}`,
        existing,
      );
    }
  }

  protected async _updateRecord(record: IdempotencyRecord): Promise<void> {
    const { outcome, ...detail } = (record.responseData ?? {}) as Partial<CollectResult>;
    if (!outcome) throw new Error(`the idempotent function returned no outcome for ${record.idempotencyKey}`);
    const key = this.key(record.idempotencyKey);
    const idem = { [STATUS]: record.getStatus(), [EXPIRY]: record.expiryTimestamp };
    const attempt = currentGroup.getStore();
    if (outcome === 'fetched' && attempt && (await attempt.ready()).exclusive) {
      // No other receive can get this record while the invocation runs: the parser's store of the page
      // records this completion with it, in its one write (fetchedFields), so a fetched URL costs no write
      // here. A record that is reported failed all the same (a URL before it in its host's group failed)
      // comes back within seconds, so the handler writes its completion when the group ends
      // (completeDeferred). Only a crash after the fetch, then a redelivery past the visibility timeout
      // (6 × the function's) before the page is stored, fetches it again, and the page's conditional store
      // absorbs that. A leased attempt, whose records a second receive can meet while it runs, writes the
      // completion at once, below.
      attempt.deferred.set(record.idempotencyKey, { key, outcome, detail, idem });
      await attempt.completed(key, { ...idem, outcome, ...detail });
      return;
    }
    await this.complete({ key, outcome, detail, idem });
    await attempt?.completed(key, { ...idem, outcome, ...detail });
  }

  /** One write: the Powertools completion and the URL's outcome together. */
  private async complete({ key, outcome, detail, idem }: Completion): Promise<void> {
    try {
      await this.completions.run(
        keyString(key),
        completionStatement(this.tableName, key, { ...outcomeFields(outcome, detail), ...idem }),
      );
    } catch {
      // PartiQL has no if_not_exists, so the batched form needs a record that has its expiry or a page: a URL
      // with no record (a frontier message sent by hand), and any statement DynamoDB refused or could not
      // run, take the single write, with the SDK's retries.
      await this.completeAlone({ key, outcome, detail, idem });
    }
  }

  /**
   * Write the completions an exclusive attempt left to the parser for the URLs given (those whose records
   * are reported failed and come back), in one BatchExecuteStatement.
   */
  async completeDeferred(attempt: GroupAttempt, keys: readonly UrlKey[]): Promise<void> {
    await Promise.all(
      keys.map(async (key) => {
        const completion = attempt.deferred.get(keyString(key));
        if (!completion) return;
        attempt.deferred.delete(keyString(key));
        await this.complete(completion);
      }),
    );
  }

  /**
   * Log the URLs these attempts (an invocation's groups) fetched whose completions are still left to the
   * parser (their records that succeeded), one fetch log item per crawl (`fetchLogItem`), so the crawler has
   * recorded every URL's outcome when the invocation ends, with or without a parser downstream. If the log
   * cannot be written, each completion is written on its URL's record instead.
   */
  async logDeferred(attempts: readonly GroupAttempt[]): Promise<void> {
    const byCrawl = new Map<string, string[]>();
    for (const attempt of attempts)
      for (const { key } of attempt.deferred.values()) {
        const urls = byCrawl.get(key.crawlId) ?? [];
        urls.push(key.url);
        byCrawl.set(key.crawlId, urls);
      }
    if (byCrawl.size === 0) return;
    const id = `${new Date().toISOString()}#${randomUUID()}`;
    try {
      await Promise.all(
        [...byCrawl].map(([crawlId, urls]) =>
          this.client.send(
            new PutCommand({
              TableName: this.tableName,
              Item: fetchLogItem(crawlId, id, urls, this.ttlSeconds),
            }),
          ),
        ),
      );
      for (const attempt of attempts) attempt.deferred.clear();
    } catch {
      await Promise.all(
        attempts.map((attempt) =>
          this.completeDeferred(
            attempt,
            [...attempt.deferred.values()].map((c) => c.key),
          ),
        ),
      );
    }
  }

  /**
   * The completion as one UpdateItem: with an expiry where the record has none, unless it holds a stored
   * page, which is kept (tried first without a page, then, where one is there, without the expiry).
   */
  private async completeAlone({ key, outcome, detail, idem }: Completion): Promise<void> {
    const { sets, names, values } = outcomeUpdate(outcome, detail, this.ttlSeconds);
    const outcomeSets = sets.filter((set) => !set.startsWith(`${URL_ATTR.expiresAt} =`));
    const write = (withExpiry: boolean) =>
      this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: key,
          UpdateExpression: `SET ${[...(withExpiry ? sets : outcomeSets), `${STATUS} = :status`, `${EXPIRY} = :expiry`].join(', ')} REMOVE ${LEASE}, ${OWNER}`,
          ...(withExpiry ? { ConditionExpression: 'attribute_not_exists(#page)' } : {}),
          ExpressionAttributeNames: { ...names, ...(withExpiry ? { '#page': URL_ATTR.fetchedAt } : {}) },
          ExpressionAttributeValues: {
            ...(withExpiry ? values : Object.fromEntries(Object.entries(values).filter(([k]) => k !== ':e'))),
            ':status': idem[STATUS],
            ':expiry': idem[EXPIRY],
          },
        }),
      );
    try {
      await write(true);
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
      await write(false);
    }
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
          ExpressionAttributeNames: names,
        }),
      );
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
    }
  }

  /** The function threw: nothing was written for it, so there is nothing to free for the retry. */
  protected async _deleteRecord(_record: IdempotencyRecord): Promise<void> {}
}
