import { createHash } from 'node:crypto';
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { BatchGetCommand, type DynamoDBDocumentClient, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import DataLoader from 'dataloader';
import type { Claim } from '../kit/claim';
import { ddb } from '../kit/clients';
import { RetryableError } from '../kit/errors';
import type { Statement } from '../kit/statement-batcher';
import { expiresAt } from '../kit/ttl';

/**
 * The URL record: one item per (crawlId, url) in the URLs table, and this module is its owner. It holds
 * the attribute names and builds every read and write of the item:
 * - the claim, written when a page finds the link first (`claimedBy` = that page, or `seed:<crawlId>`);
 * - a page's admission list, the links it paid the crawl's budget for, on an item of its own (below);
 * - the outcome, written when the crawler is done with the URL, or when a link is refused;
 * - the crawler's idempotency attributes (`idem*`), written through functions/crawler/url-idempotency.ts,
 *   the Powertools persistence layer that keeps its record on this item;
 * - for a fetched URL, the stored page (`fetchedAt` and the parser's page attributes): the parser's one
 *   write stores the page and records the crawler's outcome `fetched` and its completed idempotency record
 *   together (`pageStoreStatement`), so a fetched page costs one write past its claim, not two;
 * - `expiresAt`, the table's TTL attribute, from the stage's recordTtl (RECORD_TTL_SECONDS). A stored page
 *   drops it, so pages are kept; bookkeeping records (claims, other outcomes) expire.
 *
 * A page's admission list (the links it paid the budget for) is kept on an item of its own
 * (`admissionKey`), so the page's record stays within one write unit.
 */
export const URL_ATTR = {
  claimedBy: 'claimedBy',
  depth: 'depth',
  discoveredAt: 'discoveredAt',
  expiresAt: 'expiresAt',
  outcome: 'outcome',
  outcomeAt: 'outcomeAt',
  idemStatus: 'idemStatus',
  idemExpiry: 'idemExpiry',
  idemLeaseMs: 'idemLeaseMs',
  idemOwner: 'idemOwner',
  /** On a page's admission item (`admissionKey`): the links it paid the budget for (`admissionEntry` of each). */
  admitted: 'admitted',
  /** Epoch ms of the fetch whose page is stored on the record: present exactly when a page is stored. */
  fetchedAt: 'fetchedAt',
  /** On a fetch log item (`fetchLogKey`): the entries of the URLs the crawler fetched in one receive. */
  fetchLog: 'fetched',
} as const;

/**
 * Powertools' status of a completed idempotency record (IdempotencyRecordStatus.COMPLETED; a unit test
 * holds them equal). The parser writes it too, without importing the idempotency package into its bundle.
 */
export const IDEM_COMPLETED = 'COMPLETED';

/** The claim of a seed: the crawl itself admitted it. */
export const seedClaimant = (crawlId: string): string => `seed:${crawlId}`;

/** Every URL that enters the frontier ends with one of these, so nothing disappears silently. */
export const OUTCOMES = [
  'fetched',
  'skipped-robots',
  'blocked-address',
  'dns-error',
  'too-large',
  'not-html',
  'http-error',
  'timeout',
  'network-error',
  'redirect-loop',
  'too-many-redirects',
  'bad-encoding',
  'unsupported-encoding',
  'out-of-scope',
  'too-deep',
  'budget-exhausted',
  'unknown-crawl',
  'invalid-url',
  'body-missing',
  /** The host's Crawl-delay did not fit any of the receives the URL was given. */
  'crawl-delay-exceeded',
  /** Failed on every receive; the message is in the DLQ. A redrive replaces this with the real outcome. */
  'dead-lettered',
] as const;
export type Outcome = (typeof OUTCOMES)[number];

const outcomeSet: ReadonlySet<string> = new Set(OUTCOMES);
export const isOutcome = (value: unknown): value is Outcome =>
  typeof value === 'string' && outcomeSet.has(value);

export interface OutcomeDetail {
  readonly depth?: number;
  readonly httpStatus?: number;
  readonly finalUrl?: string;
  readonly detail?: string;
  readonly bytes?: number;
}

/** The detail attributes an outcome may carry on a URL record. */
export const OUTCOME_DETAIL_FIELDS = ['depth', 'httpStatus', 'finalUrl', 'detail', 'bytes'] as const;

/**
 * The attributes an outcome sets on a URL record, by name: the outcome, when, and its detail (strings cut
 * to 500 characters). Both forms of the write below are built from it.
 */
export function outcomeFields(outcome: Outcome, extra: OutcomeDetail): Record<string, unknown> {
  const fields: Record<string, unknown> = {
    [URL_ATTR.outcome]: outcome,
    [URL_ATTR.outcomeAt]: new Date().toISOString(),
  };
  for (const key of OUTCOME_DETAIL_FIELDS) {
    const value = extra[key];
    if (value !== undefined) fields[key] = typeof value === 'string' ? value.slice(0, 500) : value;
  }
  return fields;
}

/**
 * The parts of an UpdateItem that record an outcome on a URL record, for callers that add their own
 * attributes to the same write (the crawler's idempotency completion does). The record's expiry is set
 * only where it has none (a URL record made by its outcome alone).
 */
export function outcomeUpdate(
  outcome: Outcome,
  extra: OutcomeDetail,
  ttlSeconds: number,
): { sets: string[]; names: Record<string, string>; values: Record<string, unknown> } {
  // Every name is aliased, because several (depth, bytes) are DynamoDB reserved words.
  const names: Record<string, string> = {};
  const values: Record<string, unknown> = { ':e': expiresAt(ttlSeconds) };
  const sets = [`${URL_ATTR.expiresAt} = if_not_exists(${URL_ATTR.expiresAt}, :e)`];
  for (const [name, value] of Object.entries(outcomeFields(outcome, extra))) {
    names[`#${name}`] = name;
    values[`:${name}`] = value;
    sets.push(`#${name} = :${name}`);
  }
  return { sets, names, values };
}

/**
 * What a fetched URL's record says once the crawler is done with it: the outcome `fetched` with its detail,
 * and the crawler's idempotency record completed (expiring with the record TTL, as the crawler's
 * IdempotencyConfig does), so a redelivered frontier message replays it instead of fetching again.
 */
export function fetchedFields(detail: OutcomeDetail, ttlSeconds: number): Record<string, unknown> {
  return {
    ...outcomeFields('fetched', detail),
    [URL_ATTR.idemStatus]: IDEM_COMPLETED,
    [URL_ATTR.idemExpiry]: expiresAt(ttlSeconds),
  };
}

/** Removed by a page's write: the expiry (a stored page is kept) and a per-URL lease an older version left. */
const PAGE_WRITE_REMOVES = [URL_ATTR.expiresAt, URL_ATTR.idemLeaseMs, URL_ATTR.idemOwner] as const;

type UrlKey = { readonly crawlId: string; readonly url: string };

/**
 * A page's first store on its URL record, as a PartiQL UPDATE for a StatementBatcher: `fields` (the page's
 * and `fetchedFields`) set, the expiry and lease removed, only on a record that exists and holds no page.
 * Any other case fails the statement (ConditionalCheckFailed), and `pageStoreUpdate` decides it.
 */
export function pageStoreStatement(table: string, key: UrlKey, fields: Record<string, unknown>): Statement {
  const set = Object.entries(fields).filter(([, value]) => value !== undefined);
  return {
    Statement: [
      `UPDATE "${table}"`,
      ...set.map(([name]) => `SET "${name}" = ?`),
      ...PAGE_WRITE_REMOVES.map((name) => `REMOVE "${name}"`),
      `WHERE "crawlId" = ? AND "url" = ? AND attribute_not_exists("${URL_ATTR.fetchedAt}")`,
    ].join(' '),
    Parameters: [...set.map(([, value]) => value), key.crawlId, key.url],
  };
}

/**
 * Any store of a page, as an UpdateItem: on a record with no page (made here if there is none), or one
 * whose page is from an older fetch (`fields` must hold `fetchedAt`). Attributes given as undefined are
 * removed, so a newer fetch leaves nothing of the older page behind. UPDATED_OLD tells a replaced page
 * (an older `fetchedAt` comes back) from a first one.
 */
export function pageStoreUpdate(table: string, key: UrlKey, fields: Record<string, unknown>) {
  const names: Record<string, string> = { '#f': URL_ATTR.fetchedAt };
  const values: Record<string, unknown> = { ':f': fields[URL_ATTR.fetchedAt] };
  const sets: string[] = [];
  const removes: string[] = PAGE_WRITE_REMOVES.map((name) => {
    names[`#${name}`] = name;
    return `#${name}`;
  });
  for (const [i, [name, value]] of Object.entries(fields).entries()) {
    names[`#p${i}`] = name;
    if (value === undefined) removes.push(`#p${i}`);
    else {
      values[`:p${i}`] = value;
      sets.push(`#p${i} = :p${i}`);
    }
  }
  return {
    TableName: table,
    Key: { crawlId: key.crawlId, url: key.url },
    UpdateExpression: `SET ${sets.join(', ')} REMOVE ${removes.join(', ')}`,
    ConditionExpression: 'attribute_not_exists(#f) OR #f < :f',
    ExpressionAttributeNames: names,
    ExpressionAttributeValues: values,
    ReturnValues: 'UPDATED_OLD' as const,
  };
}

/**
 * A fetched page the parser gives up on (its message goes to the DLQ): the URL still gets the crawler's
 * outcome `fetched`, completed, so it is not fetched again and says where it stopped; a DLQ redrive then
 * stores the page. Only where no page is stored; the record keeps its expiry.
 */
export async function recordFetchedUnstored(
  table: string,
  key: UrlKey,
  detail: OutcomeDetail,
  ttlSeconds: number,
  client: DynamoDBDocumentClient = ddb,
): Promise<void> {
  const names: Record<string, string> = { '#f': URL_ATTR.fetchedAt, '#x': URL_ATTR.expiresAt };
  const values: Record<string, unknown> = { ':e': expiresAt(ttlSeconds) };
  const sets = ['#x = if_not_exists(#x, :e)'];
  for (const [i, [name, value]] of Object.entries(fetchedFields(detail, ttlSeconds)).entries()) {
    names[`#o${i}`] = name;
    values[`:o${i}`] = value;
    sets.push(`#o${i} = :o${i}`);
  }
  try {
    await client.send(
      new UpdateCommand({
        TableName: table,
        Key: { crawlId: key.crawlId, url: key.url },
        UpdateExpression: `SET ${sets.join(', ')}`,
        ConditionExpression: 'attribute_not_exists(#f)',
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: values,
      }),
    );
  } catch (error) {
    if (!(error instanceof ConditionalCheckFailedException)) throw error;
  }
}

/** Record a URL's outcome on its first-seen record (creating it for seeds). */
export async function recordOutcome(
  table: string,
  crawlId: string,
  url: string,
  outcome: Outcome,
  extra: OutcomeDetail,
  ttlSeconds: number,
  client: DynamoDBDocumentClient = ddb,
): Promise<void> {
  const { sets, names, values } = outcomeUpdate(outcome, extra, ttlSeconds);
  await client.send(
    new UpdateCommand({
      TableName: table,
      Key: { crawlId, url },
      UpdateExpression: `SET ${sets.join(', ')}`,
      ExpressionAttributeValues: values,
      ExpressionAttributeNames: names,
    }),
  );
}

/** Claim a seed (depth 0) for its crawl; a seed is admitted by the crawl's creation, so no condition. */
export async function claimSeed(
  client: DynamoDBDocumentClient,
  table: string,
  crawlId: string,
  url: string,
  ttlSeconds: number,
): Promise<void> {
  await client.send(
    new UpdateCommand({
      TableName: table,
      Key: { crawlId, url },
      UpdateExpression: `SET ${URL_ATTR.claimedBy} = :c, #d = :d, ${URL_ATTR.expiresAt} = :e`,
      ExpressionAttributeNames: { '#d': URL_ATTR.depth },
      ExpressionAttributeValues: { ':c': seedClaimant(crawlId), ':d': 0, ':e': expiresAt(ttlSeconds) },
    }),
  );
}

/**
 * The claim of a link: its record, created with `claimedBy` = the page only where no record exists (a
 * record means the link was claimed by some page, or given an outcome). A claim is not yet an admission:
 * the page admits the links it claimed by paying for them (`admissionItem`).
 */
export function linkClaim(
  table: string,
  crawlId: string,
  url: string,
  claimant: string,
  depth: number,
  ttlSeconds: number,
): Claim {
  return {
    table,
    keyAttribute: 'url',
    item: {
      crawlId,
      url,
      [URL_ATTR.claimedBy]: claimant,
      [URL_ATTR.depth]: depth,
      [URL_ATTR.discoveredAt]: new Date().toISOString(),
      [URL_ATTR.expiresAt]: expiresAt(ttlSeconds),
    },
  };
}

/**
 * A link's entry in its page's admission list: 96 bits of the SHA-256 of its URL, so a page's list stays
 * small (16 characters a link, 8 KB for the 500 links a page may have) whatever its URLs' lengths.
 */
export const admissionEntry = (url: string): string =>
  createHash('sha256').update(url).digest('base64url').slice(0, 16);

/**
 * The key of a page's admission item: the page's URL, in a partition of its own per crawl ('#' cannot start
 * a crawl id), so it never mixes with the crawl's URL records and does not grow the page's record.
 */
export const admissionKey = (crawlId: string, page: string) => ({
  crawlId: `#admitted#${crawlId}`,
  url: page,
});

/**
 * The crawler's fetch log: one item per crawl per invocation, naming the URLs it fetched whose completion it
 * left to the parser's store of the page (by `admissionEntry`, 16 characters each, so a batch's ten stay one
 * write unit whatever their lengths). It is how the crawler records a fetched URL's outcome on its own, at
 * about a tenth of a write a page: `listUrls` reads a URL that has no outcome of its own yet as `fetched`
 * when a log names it. The items of a crawl share a partition of their own, as the admission items do.
 */
export const fetchLogPartition = (crawlId: string): string => `#fetched#${crawlId}`;

export const fetchLogKey = (crawlId: string, id: string) => ({
  crawlId: fetchLogPartition(crawlId),
  url: id,
});

/** The fetch log item of `urls` (canonical) of one crawl, expiring with the crawl's claims. */
export function fetchLogItem(
  crawlId: string,
  id: string,
  urls: readonly string[],
  ttlSeconds: number,
): Record<string, unknown> {
  return {
    ...fetchLogKey(crawlId, id),
    [URL_ATTR.fetchLog]: urls.map(admissionEntry),
    [URL_ATTR.expiresAt]: expiresAt(ttlSeconds),
  };
}

/** The entries a fetch log item names. */
export function fetchLogEntries(item: Record<string, unknown>): string[] {
  const value = item[URL_ATTR.fetchLog];
  return Array.isArray(value) ? value.map(String) : [];
}

/**
 * The page half of a payment, as a transaction item beside the budget's take: append the entries of the
 * links the page pays for to the page's admission list (`admissionKey`), only if that list still has
 * the length the caller knows (absent for 0). It is a compare-and-set, so two attempts of one page never
 * pay for one link twice: the one that loses reads the list back (ALL_OLD) and pays only for what is not
 * on it.
 */
export function admissionItem(
  table: string,
  crawlId: string,
  page: string,
  entries: readonly string[],
  lengthKnown: number,
  ttlSeconds: number,
) {
  return {
    Update: {
      TableName: table,
      Key: admissionKey(crawlId, page),
      UpdateExpression: 'SET #a = list_append(if_not_exists(#a, :none), :add), #x = if_not_exists(#x, :e)',
      ConditionExpression: lengthKnown === 0 ? 'attribute_not_exists(#a)' : 'size(#a) = :n',
      ReturnValuesOnConditionCheckFailure: 'ALL_OLD' as const,
      ExpressionAttributeNames: { '#a': URL_ATTR.admitted, '#x': URL_ATTR.expiresAt },
      ExpressionAttributeValues: {
        ':none': [],
        ':add': [...entries],
        ':e': expiresAt(ttlSeconds),
        ...(lengthKnown === 0 ? {} : { ':n': lengthKnown }),
      },
    },
  };
}

/** The admission list of a page's admission item read back from a failed payment (wire or plain form). */
export function admissionsOf(item: Record<string, unknown> | undefined): string[] {
  const value = item?.[URL_ATTR.admitted] as { L?: Array<{ S?: string }> } | string[] | undefined;
  if (Array.isArray(value)) return value.map(String);
  return (value?.L ?? []).map((entry) => entry.S ?? '');
}

/** The owner named by an item read back from a failed claim ('' for a record without a claim). */
export function claimOwnerOf(item: Record<string, unknown> | undefined): string {
  const value = item?.[URL_ATTR.claimedBy] as { S?: string } | string | undefined;
  return (typeof value === 'object' ? value?.S : value) ?? '';
}

/**
 * A link this page claimed but could not pay for, the budget being spent, gets the outcome budget-exhausted
 * and loses its claim, so it is neither sent nor left silent, and every page counts it as known. Only while
 * this page holds the claim (or the refusal is already written).
 */
export async function refuseOwnClaim(
  table: string,
  crawlId: string,
  url: string,
  claimant: string,
  depth: number,
  ttlSeconds: number,
): Promise<void> {
  const { sets, names, values } = outcomeUpdate('budget-exhausted', { depth }, ttlSeconds);
  try {
    await ddb.send(
      new UpdateCommand({
        TableName: table,
        Key: { crawlId, url },
        UpdateExpression: `SET ${sets.join(', ')} REMOVE #c`,
        ConditionExpression: `#c = :me OR #${URL_ATTR.outcome} = :${URL_ATTR.outcome}`,
        ExpressionAttributeNames: { ...names, '#c': URL_ATTR.claimedBy },
        ExpressionAttributeValues: { ...values, ':me': claimant },
      }),
    );
  } catch (error) {
    if (!(error instanceof ConditionalCheckFailedException)) throw error;
  }
}

/**
 * claimedBy of each URL that has a record ('' for a record with no claim, such as a refused link's). Pages
 * parsed side by side read their links together: the reads started in one turn of the event loop go out as
 * one BatchGetItem per 100 distinct keys (DataLoader, without its cache: a claim read must be fresh).
 * `consistent` reads are for a redelivered page, whose own claims a stale read could hide; `dropAnswer` is a
 * test hook that loses an eventually consistent answer, as a stale replica would.
 */
export async function readClaimOwners(
  table: string,
  crawlId: string,
  urls: readonly string[],
  consistent: boolean,
  dropAnswer = false,
): Promise<Map<string, string>> {
  const owners = new Map<string, string>();
  if (dropAnswer && !consistent) {
    const items = await readUrlRecords(
      table,
      urls.map((url) => ({ crawlId, url })),
      { consistent, attributes: [URL_ATTR.claimedBy], dropAnswer: true },
    );
    for (const item of items) owners.set(item.url as string, claimOwnerOf(item));
    return owners;
  }
  const found = await claimLoader(table, consistent).loadMany(urls.map((url) => keyOf({ crawlId, url })));
  for (const [i, owner] of found.entries()) {
    if (owner instanceof Error) throw owner;
    if (owner !== undefined) owners.set(urls[i] as string, owner);
  }
  return owners;
}

const keyOf = (key: { crawlId: string; url: string }) => JSON.stringify([key.crawlId, key.url]);
const claimLoaders = new Map<string, DataLoader<string, string | undefined>>();

/** One loader per table and read consistency, whose batches read claimedBy of distinct keys. */
function claimLoader(table: string, consistent: boolean): DataLoader<string, string | undefined> {
  const id = `${consistent} ${table}`;
  let loader = claimLoaders.get(id);
  if (!loader) {
    loader = new DataLoader(
      async (keys) => {
        const distinct = [...new Set(keys)].map((k) => {
          const [crawlId, url] = JSON.parse(k) as [string, string];
          return { crawlId, url };
        });
        const items = await readUrlRecords(table, distinct, { consistent, attributes: [URL_ATTR.claimedBy] });
        const byKey = new Map(items.map((item) => [keyOf(item as { crawlId: string; url: string }), item]));
        return keys.map((k) => {
          const item = byKey.get(k);
          return item ? claimOwnerOf(item) : undefined;
        });
      },
      // After the turn's I/O callbacks, as the statement batchers do, so pages that resume together share it.
      { cache: false, maxBatchSize: 100, batchScheduleFn: (run) => setImmediate(run) },
    );
    claimLoaders.set(id, loader);
  }
  return loader;
}

/**
 * Read URL records, 100 keys to a BatchGetItem, retrying the keys DynamoDB leaves unprocessed (there is no
 * SDK paginator for BatchGetItem). Keys must be distinct. Only the key attributes and `attributes` are
 * returned when `attributes` is given.
 */
export async function readUrlRecords(
  table: string,
  keys: ReadonlyArray<{ crawlId: string; url: string }>,
  options: { consistent: boolean; attributes?: readonly string[]; dropAnswer?: boolean },
  client: DynamoDBDocumentClient = ddb,
): Promise<Array<Record<string, unknown>>> {
  const items: Array<Record<string, unknown>> = [];
  const projection = options.attributes
    ? {
        ProjectionExpression: ['#c', '#u', ...options.attributes.map((_, i) => `#a${i}`)].join(', '),
        ExpressionAttributeNames: {
          '#c': 'crawlId',
          '#u': 'url',
          ...Object.fromEntries(options.attributes.map((a, i) => [`#a${i}`, a])),
        },
      }
    : {};
  for (let i = 0; i < keys.length; i += 100) {
    let pending: Array<Record<string, unknown>> | undefined = keys.slice(i, i + 100).map((k) => ({ ...k }));
    for (let attempt = 0; pending && pending.length > 0; attempt++) {
      if (attempt >= 5)
        throw new RetryableError(`BatchGetItem left ${pending.length} keys unprocessed after 5 attempts`);
      const out = await client.send(
        new BatchGetCommand({
          RequestItems: { [table]: { Keys: pending, ConsistentRead: options.consistent, ...projection } },
        }),
      );
      if (options.dropAnswer) out.Responses = { [table]: [] };
      items.push(...(out.Responses?.[table] ?? []));
      pending = out.UnprocessedKeys?.[table]?.Keys as Array<Record<string, unknown>> | undefined;
      if (pending && pending.length > 0) await new Promise((r) => setTimeout(r, 50 * 2 ** attempt));
    }
  }
  return items;
}
