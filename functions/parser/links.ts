import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { BatchGetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { ddb } from '../shared/clients';
import { admitUrls, type CrawlJob } from '../shared/crawls';
import { RetryableError } from '../shared/errors';
import { sendToFrontier } from '../shared/frontier';
import { recordOutcome } from '../shared/outcomes';
import { hostKey } from '../shared/url';

/**
 * Link discovery that never loses a URL and rarely pays for a known one.
 *
 * A new link is claimed in the URLs table with `claimedBy` = the discovering page, under the condition
 * "absent, or already claimed by this same page". Only then is it sent to the frontier. If the function
 * dies between claim and send, the redelivered parse message finds its own claims and sends them again;
 * the frontier's dedup id (and the crawler's idempotency record) absorb any resend that did get through.
 *
 * Cost: links already known to this container are dropped from memory, the rest are checked with one
 * BatchGetItem per 100, and only links absent from the table cost a conditional write.
 */
export interface DiscoverInput {
  readonly crawlId: string;
  readonly correlationId: string;
  /** Canonical URL of the page the links were found on: the claim token. */
  readonly claimant: string;
  readonly depth: number;
  readonly links: readonly string[];
  readonly job: CrawlJob;
  readonly urlsTable: string;
  readonly crawlsTable: string;
  readonly frontierQueueUrl: string;
  readonly ttlSeconds: number;
  /** The parse message was received before (ApproximateReceiveCount > 1): its own claims may exist. */
  readonly redelivered?: boolean;
}

export interface DiscoverResult {
  readonly enqueued: number;
  readonly alreadyKnown: number;
  readonly outOfScope: number;
  readonly tooDeep: number;
  readonly reclaimed: number;
  /** New links not enqueued because the crawl's page budget is spent. */
  readonly overBudget: number;
}

/** Test hook: called after claims are written and before they are enqueued, to simulate a crash there. */
export const faultInjection: { afterClaim?: (urls: readonly string[]) => void } = {};

/**
 * What this container knows about a link, per crawl: SETTLED once it was sent to the frontier or given an
 * outcome (by this container, or recorded before a claim was tried), or else the page that claimed it.
 * A link claimed by another page is that page's to send, so it is skipped; but a link claimed by the page
 * being parsed is never skipped, because that page may have died between its claim and its send, and its
 * retry (possibly in this same container) must find and send it. Bounded; oldest dropped first.
 */
const known = new Map<string, string>();
const SETTLED = '\u0000settled';
const KNOWN_MAX = 200_000;
const remember = (key: string, state: string = SETTLED) => {
  if (known.size >= KNOWN_MAX) known.delete(known.keys().next().value as string);
  known.set(key, state);
};
/** Whether a page can skip a link from memory alone: settled, or claimed by some other page. */
const skippable = (key: string, claimant: string): boolean => {
  const state = known.get(key);
  return state !== undefined && state !== claimant;
};
const keyOf = (crawlId: string, url: string) => `${crawlId} ${url}`;
/** Crawls this container has seen run out of budget: their new links are no longer claimed. */
const exhausted = new Set<string>();
/** Links a page in this container is claiming and sending right now; settles when that page is done. */
const inflight = new Map<string, Promise<void>>();

/** Scope and depth filter (pure). */
export function filterLinks(
  links: readonly string[],
  claimant: string,
  depth: number,
  job: Pick<CrawlJob, 'allowedHosts' | 'maxDepth'>,
): { inScope: string[]; outOfScope: number; tooDeep: number } {
  if (depth + 1 > job.maxDepth) return { inScope: [], outOfScope: 0, tooDeep: links.length };
  const hosts = new Set(job.allowedHosts);
  const inScope: string[] = [];
  let outOfScope = 0;
  for (const link of links) {
    if (link === claimant) continue;
    if (hosts.has(hostKey(link))) inScope.push(link);
    else outOfScope++;
  }
  return { inScope, outOfScope, tooDeep: 0 };
}

export async function discoverLinks(input: DiscoverInput): Promise<DiscoverResult> {
  const { crawlId, claimant } = input;
  const { inScope, outOfScope, tooDeep } = filterLinks(input.links, claimant, input.depth, input.job);
  const unknown = inScope.filter((u) => !skippable(keyOf(crawlId, u), claimant));
  // A redelivered page may have claimed links before it died: read them consistently, so a stale read
  // cannot hide its own claims (and so count them over budget instead of sending them).
  const existing = await readClaims(input.urlsTable, crawlId, unknown, input.redelivered === true);

  const toSend: string[] = [];
  let alreadyKnown = inScope.length - unknown.length;
  let reclaimed = 0;
  const toClaim: string[] = [];
  for (const url of unknown) {
    const owner = existing.get(url);
    if (owner === undefined) toClaim.push(url);
    else if (owner === claimant) {
      toSend.push(url);
      reclaimed++;
    } else {
      alreadyKnown++;
      remember(keyOf(crawlId, url), owner || SETTLED);
    }
  }

  // Once the budget is spent, new links are only counted; reclaimed ones still go through admission below.
  const overBudget = exhausted.has(crawlId) ? toClaim.splice(0).length : 0;
  let refusedCount = 0;

  // Pages of one batch run side by side and often find the same new links. A link another page in this
  // container is already claiming is left to that page: awaiting its claim-and-send costs no write, where a
  // second claim would be a billed conditional failure. Registration is synchronous, so a page only ever
  // waits on pages that registered before it, and waits cannot form a cycle.
  const mine: string[] = [];
  const waits: Array<[string, Promise<void>]> = [];
  for (const url of toClaim) {
    const pending = inflight.get(keyOf(crawlId, url));
    if (pending) waits.push([url, pending]);
    else mine.push(url);
  }
  // Promise.withResolvers is Node 22+, and the sandbox runs these bundles on Node 20.
  const done = {} as { promise: Promise<void>; resolve: () => void; reject: (e: unknown) => void };
  done.promise = new Promise<void>((resolve, reject) => Object.assign(done, { resolve, reject }));
  done.promise.catch(() => undefined);
  for (const url of mine) inflight.set(keyOf(crawlId, url), done.promise);
  try {
    const claimed = await claimAll(input, mine);
    alreadyKnown += mine.length - claimed.length;
    // If the other page failed, its message comes back and claims again; claiming here too is still safe.
    const orphaned: string[] = [];
    for (const [url, pending] of waits) {
      try {
        await pending;
        alreadyKnown++;
      } catch {
        orphaned.push(url);
      }
    }
    const adopted = await claimAll(input, orphaned);
    alreadyKnown += orphaned.length - adopted.length;
    toSend.push(...claimed, ...adopted);

    faultInjection.afterClaim?.(toSend);
    const nextDepth = input.depth + 1;
    // Admission after the claims, so a lost claim race never spends budget. A crash between here and the
    // send makes the redelivery admit its reclaimed links again: the crawl may stop a few pages short of
    // maxPages, never beyond it.
    const admitted = await admitUrls(input.crawlsTable, crawlId, toSend.length);
    if (admitted < toSend.length) {
      exhausted.add(crawlId);
      const refused = toSend.splice(admitted);
      await Promise.all(
        refused.map((url) =>
          recordOutcome(
            input.urlsTable,
            crawlId,
            url,
            'budget-exhausted',
            { depth: nextDepth },
            input.ttlSeconds,
          ),
        ),
      );
      for (const url of refused) remember(keyOf(crawlId, url));
      refusedCount = refused.length;
    }
    await sendToFrontier(
      input.frontierQueueUrl,
      crawlId,
      input.correlationId,
      toSend.map((url) => ({ url, depth: nextDepth, discoveredFrom: claimant })),
    );
    for (const url of toSend) remember(keyOf(crawlId, url));
    done.resolve();
  } catch (error) {
    done.reject(error);
    throw error;
  } finally {
    for (const url of mine) {
      const key = keyOf(crawlId, url);
      if (inflight.get(key) === done.promise) inflight.delete(key);
    }
  }
  return {
    enqueued: toSend.length,
    alreadyKnown,
    outOfScope,
    tooDeep,
    reclaimed,
    overBudget: overBudget + refusedCount,
  };
}

/** Test hook: drop the answer of an eventually consistent claim read, as a stale replica would. */
export const staleReads: { inject?: boolean } = {};

/**
 * claimedBy of each URL that has a record ('' for a record with no claim, such as a seed's).
 * Eventually consistent on a first delivery, where a stale miss only costs a conditional claim that
 * fails; strongly consistent on a redelivery, where a stale miss could hide the page's own claims.
 */
async function readClaims(
  table: string,
  crawlId: string,
  urls: readonly string[],
  consistent: boolean,
): Promise<Map<string, string>> {
  const owners = new Map<string, string>();
  for (let i = 0; i < urls.length; i += 100) {
    let keys: Array<Record<string, unknown>> | undefined = urls
      .slice(i, i + 100)
      .map((url) => ({ crawlId, url }));
    for (let attempt = 0; keys && keys.length > 0; attempt++) {
      if (attempt >= 5)
        throw new RetryableError(`BatchGetItem left ${keys.length} keys unprocessed after 5 attempts`);
      const out = await ddb.send(
        new BatchGetCommand({
          RequestItems: {
            [table]: {
              Keys: keys,
              ProjectionExpression: '#u, claimedBy',
              ExpressionAttributeNames: { '#u': 'url' },
              ConsistentRead: consistent,
            },
          },
        }),
      );
      if (staleReads.inject && !consistent) out.Responses = { [table]: [] };
      for (const item of out.Responses?.[table] ?? [])
        owners.set(item.url as string, String(item.claimedBy ?? ''));
      keys = out.UnprocessedKeys?.[table]?.Keys as Array<Record<string, unknown>> | undefined;
      if (keys && keys.length > 0) await new Promise((r) => setTimeout(r, 50 * 2 ** attempt));
    }
  }
  return owners;
}

/** Claim each URL for this page; returns those claimed (newly, or already by this page). */
async function claimAll(input: DiscoverInput, urls: readonly string[]): Promise<string[]> {
  const claimed: string[] = [];
  const now = new Date().toISOString();
  const expiresAt = Math.floor(Date.now() / 1000) + input.ttlSeconds;
  const CONCURRENCY = 16;
  for (let i = 0; i < urls.length; i += CONCURRENCY) {
    await Promise.all(
      urls.slice(i, i + CONCURRENCY).map(async (url) => {
        try {
          // UpdateItem, not PutItem: a claim must never erase an outcome the crawler already recorded.
          await ddb.send(
            new UpdateCommand({
              TableName: input.urlsTable,
              Key: { crawlId: input.crawlId, url },
              UpdateExpression:
                'SET claimedBy = :me, #d = if_not_exists(#d, :d), discoveredAt = if_not_exists(discoveredAt, :t), expiresAt = if_not_exists(expiresAt, :e)',
              ConditionExpression: 'attribute_not_exists(#u) OR claimedBy = :me',
              // On a lost race, learn who owns the link (no extra read), so only that page skips it.
              ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
              ExpressionAttributeNames: { '#u': 'url', '#d': 'depth' },
              ExpressionAttributeValues: {
                ':me': input.claimant,
                ':d': input.depth + 1,
                ':t': now,
                ':e': expiresAt,
              },
            }),
          );
          claimed.push(url);
        } catch (error) {
          if (!(error instanceof ConditionalCheckFailedException)) throw error;
          const owner = String(
            (error.Item as { claimedBy?: { S?: string } } | undefined)?.claimedBy?.S ?? '',
          );
          remember(keyOf(input.crawlId, url), owner || SETTLED);
        }
      }),
    );
  }
  return claimed;
}

/** Forget what this container knows (tests, and a crawl restarted under the same id). */
export function resetKnownLinks(): void {
  known.clear();
  exhausted.clear();
}
