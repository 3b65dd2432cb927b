import { TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import { TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { budgetDecrement, type CrawlJob, placesLeftOf } from '../crawl/crawl-record';
import { sendToFrontier } from '../crawl/frontier';
import { hostKey } from '../crawl/url';
import { claimLinkItem, claimOwnerOf, readClaimOwners, recordRefusal } from '../crawl/url-record';
import { ddb } from '../kit/clients';
import { RetryableError } from '../kit/errors';

/**
 * Link discovery that never loses a URL, admits each one exactly once, and rarely pays for a known one.
 *
 * A new link is claimed and admitted in one transaction: the URL record is created with `claimedBy` = the
 * discovering page (condition: no record yet), and the crawl's page budget loses one place per claimed
 * link (condition: enough places left). So a claimed link is an admitted link, whatever is retried: an SDK
 * resend of a committed transaction, a page parsed twice, or a redelivery after a failed send all find the
 * claim and send the link again without spending. If the function dies between claim and send, the
 * redelivered parse message finds its own claims and sends them; the frontier's dedup id (and the
 * crawler's idempotency record) absorb any resend that did get through.
 *
 * Cost: links already known to this container are dropped from memory, the rest are checked with one
 * BatchGetItem per 100, and only links absent from the table go into a transaction (two write units per
 * item, 99 links and the budget per transaction).
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
  const existing = await readClaimOwners(
    input.urlsTable,
    crawlId,
    unknown,
    input.redelivered === true,
    staleReads.inject,
  );

  const toSend: string[] = [];
  let alreadyKnown = inScope.length - unknown.length;
  let reclaimed = 0;
  const toClaim: string[] = [];
  for (const url of new Set(unknown)) {
    const owner = existing.get(url);
    if (owner === undefined) toClaim.push(url);
    else if (owner === claimant) {
      // Claimed by this page on an earlier attempt, so already admitted: sent again, never paid again.
      toSend.push(url);
      reclaimed++;
    } else {
      alreadyKnown++;
      remember(keyOf(crawlId, url), owner || SETTLED);
    }
  }

  // Once the budget is spent, new links are only counted.
  const overBudget = exhausted.has(crawlId) ? toClaim.splice(0).length : 0;
  const refused: string[] = [];

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
    const first = await admitAll(input, mine);
    alreadyKnown += first.known;
    refused.push(...first.refused);
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
    const adopted = await admitAll(input, orphaned);
    alreadyKnown += adopted.known;
    refused.push(...adopted.refused);
    toSend.push(...first.admitted, ...adopted.admitted);

    faultInjection.afterClaim?.(toSend);
    const nextDepth = input.depth + 1;
    await Promise.all(
      refused.map((url) => recordRefusal(input.urlsTable, crawlId, url, nextDepth, input.ttlSeconds)),
    );
    for (const url of refused) remember(keyOf(crawlId, url));
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
    overBudget: overBudget + refused.length,
  };
}

/** Test hook: drop the answer of an eventually consistent claim read, as a stale replica would. */
export const staleReads: { inject?: boolean } = {};

/** Links per admission transaction: DynamoDB allows 100 items, and one is the budget. */
const LINKS_PER_TRANSACTION = 99;
/** Transactions cancelled by a concurrent one (the budget item is shared) before the record is retried. */
const MAX_CONFLICTS = 8;

/**
 * Claim and admit each URL for this page, in transactions of up to 99 links and the budget. A cancelled
 * transaction says why, item by item: a link that already has a record is dropped (claimed by this page
 * before: admitted and sent; by another page or refused: known), too small a budget shrinks the next
 * transaction to the places left, and a conflict with another page's transaction is retried after a pause.
 */
async function admitAll(
  input: DiscoverInput,
  urls: readonly string[],
): Promise<{ admitted: string[]; refused: string[]; known: number }> {
  const admitted: string[] = [];
  const refused: string[] = [];
  let known = 0;
  let pending = [...urls];
  let placesLeft = Number.POSITIVE_INFINITY;
  let conflicts = 0;
  while (pending.length > 0) {
    if (placesLeft <= 0 || exhausted.has(input.crawlId)) {
      exhausted.add(input.crawlId);
      refused.push(...pending);
      break;
    }
    const batch = pending.slice(0, Math.min(LINKS_PER_TRANSACTION, placesLeft));
    try {
      await ddb.send(
        new TransactWriteCommand({
          TransactItems: [
            budgetDecrement(input.crawlsTable, input.crawlId, batch.length),
            ...batch.map((url) =>
              claimLinkItem(
                input.urlsTable,
                input.crawlId,
                url,
                input.claimant,
                input.depth + 1,
                input.ttlSeconds,
              ),
            ),
          ],
        }),
      );
      admitted.push(...batch);
      pending = pending.slice(batch.length);
      placesLeft -= batch.length;
    } catch (error) {
      if (!(error instanceof TransactionCanceledException)) throw error;
      const reasons = error.CancellationReasons ?? [];
      const settled = new Set<string>();
      let progressed = false;
      reasons.forEach((reason, i) => {
        if (reason.Code !== 'ConditionalCheckFailed') return;
        progressed = true;
        const item = reason.Item as Record<string, unknown> | undefined;
        if (i === 0) {
          placesLeft = placesLeftOf(item);
          return;
        }
        const url = batch[i - 1] as string;
        settled.add(url);
        const owner = claimOwnerOf(item);
        // An earlier attempt of this page (or an SDK resend of this very transaction) already committed.
        if (owner === input.claimant) admitted.push(url);
        else {
          known++;
          remember(keyOf(input.crawlId, url), owner || SETTLED);
        }
      });
      pending = pending.filter((url) => !settled.has(url));
      if (!progressed) {
        // TransactionConflict (or a throttled item): nothing was learned, so pause and try again.
        if (++conflicts > MAX_CONFLICTS)
          throw new RetryableError(
            `admission cancelled ${conflicts} times (${reasons.map((r) => r.Code).join(',')})`,
            { cause: error },
          );
        await new Promise((r) => setTimeout(r, Math.random() * 25 * 2 ** Math.min(conflicts, 6)));
      }
    }
  }
  return { admitted, refused, known };
}

/** Forget what this container knows (tests, and a crawl restarted under the same id). */
export function resetKnownLinks(): void {
  known.clear();
  exhausted.clear();
}
