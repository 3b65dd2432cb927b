import { TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import { TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { budgetDecrement, type CrawlJob, placesLeftOf } from '../crawl/crawl-record';
import { sendToFrontier } from '../crawl/frontier';
import { hostKey } from '../crawl/url';
import {
  admissionEntry,
  admissionItem,
  admissionsOf,
  claimOwnerOf,
  linkClaim,
  readClaimOwners,
  refuseOwnClaim,
} from '../crawl/url-record';
import { claimOnce, claimStatement } from '../kit/claim';
import { ddb } from '../kit/clients';
import { RetryableError } from '../kit/errors';
import { StatementBatcher, StatementFailed } from '../kit/statement-batcher';

/**
 * Link discovery that never loses a URL, admits each one exactly once, and rarely pays for a known one.
 *
 * A new link is first claimed: its URL record is created with `claimedBy` = the discovering page, only
 * where no record exists (one write unit, batched with the claims of the pages parsed beside it). The page
 * then pays for the links it owns in one transaction: the crawl's page budget loses one place per link
 * (condition: enough places left), and the links go on the page's admission list, an item of its own
 * (condition: the list is as long as this attempt knows it). Only paid links are sent. So whatever is
 * retried (an SDK resend, a page parsed twice at once, a redelivery after a crash between claim, payment
 * and send), a link is paid for once: a later attempt finds its claims, reads the list, pays only for what
 * is not on it, and sends the rest again. The frontier's dedup id (and the crawler's idempotency record)
 * absorb a resend that did get through. A link the page owns but cannot pay for, the budget being spent,
 * is given the outcome budget-exhausted and loses its claim.
 *
 * Cost: links already known to this container are dropped from memory, the rest are checked with one
 * BatchGetItem per 100 (shared with the pages checking in the same turn), a claim costs one write unit,
 * and a page that admits links pays two per item of its one transaction (the budget and its admission
 * list), however many links it admits. Claiming and admitting each link in the transaction cost two units
 * a link.
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

/**
 * Test hooks, to simulate a crash: `beforePayment` runs once the claims are written and before they are
 * paid for, `afterClaim` once they are paid for and before they are enqueued.
 */
export const faultInjection: {
  beforePayment?: (urls: readonly string[]) => void;
  afterClaim?: (urls: readonly string[]) => void;
} = {};

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

  let alreadyKnown = inScope.length - unknown.length;
  const toClaim: string[] = [];
  // Claimed by this page on an earlier attempt: paid for then, or still to pay for, never twice.
  const ownedBefore: string[] = [];
  for (const url of new Set(unknown)) {
    const owner = existing.get(url);
    if (owner === undefined) toClaim.push(url);
    else if (owner === claimant) ownedBefore.push(url);
    else {
      alreadyKnown++;
      remember(keyOf(crawlId, url), owner || SETTLED);
    }
  }

  // Once the budget is spent, new links are only counted.
  const overBudget = exhausted.has(crawlId) ? toClaim.splice(0).length : 0;

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
  let reclaimed = ownedBefore.length;
  let refused: string[] = [];
  let toSend: string[] = [];
  try {
    const first = await claimAll(input, mine);
    alreadyKnown += first.known;
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
    alreadyKnown += adopted.known;
    reclaimed += first.ownedBefore + adopted.ownedBefore;
    const owned = [...ownedBefore, ...first.owned, ...adopted.owned];

    faultInjection.beforePayment?.(owned);
    ({ admitted: toSend, refused } = await payFor(input, owned));
    faultInjection.afterClaim?.(toSend);
    const nextDepth = input.depth + 1;
    await Promise.all(
      refused.map((url) =>
        refuseOwnClaim(input.urlsTable, crawlId, url, claimant, nextDepth, input.ttlSeconds),
      ),
    );
    for (const url of refused) remember(keyOf(crawlId, url));
    await sendToFrontier(
      input.frontierQueueUrl,
      crawlId,
      input.correlationId,
      toSend.map((url) => ({
        url,
        depth: nextDepth,
        discoveredFrom: claimant,
        fresh: first.claimed.has(url) || adopted.claimed.has(url),
      })),
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

/** Payments cancelled by a concurrent one (the budget item is shared) before the record is retried. */
const MAX_CONFLICTS = 8;
/** Payment rounds, of any kind, before the record is retried. */
const MAX_PAYMENT_ROUNDS = 32;

/** The claims of pages parsed side by side: one BatchExecuteStatement per 25 instead of a write each. */
const claims = new StatementBatcher(ddb);

/**
 * Claim each URL for this page. A URL that already has a record is read back: claimed by this page on an
 * earlier attempt (owned, still to be paid for or not), or by another page or given an outcome (known).
 */
async function claimAll(
  input: DiscoverInput,
  urls: readonly string[],
): Promise<{ owned: string[]; claimed: Set<string>; ownedBefore: number; known: number }> {
  const owned: string[] = [];
  // Claimed by this attempt's own write: no message for these URLs was ever sent.
  const claimed = new Set<string>();
  const taken: string[] = [];
  let ownedBefore = 0;
  let known = 0;
  const settle = (url: string, owner: string) => {
    if (owner === input.claimant) {
      owned.push(url);
      ownedBefore++;
    } else {
      known++;
      remember(keyOf(input.crawlId, url), owner || SETTLED);
    }
  };
  await Promise.all(
    urls.map(async (url) => {
      const claim = linkClaim(
        input.urlsTable,
        input.crawlId,
        url,
        input.claimant,
        input.depth + 1,
        input.ttlSeconds,
      );
      try {
        await claims.run(`${input.crawlId} ${url}`, claimStatement(claim));
        owned.push(url);
        claimed.add(url);
      } catch (error) {
        if (error instanceof StatementFailed && error.code === 'DuplicateItem') taken.push(url);
        else {
          // Any other refusal, or a failed request: the same claim on its own, which says who won.
          const result = await claimOnce(ddb, claim);
          if (result.claimed) {
            owned.push(url);
            claimed.add(url);
          } else settle(url, claimOwnerOf(result.existing));
        }
      }
    }),
  );
  if (taken.length > 0) {
    // Claims are never taken back, so a strongly consistent read names the winner.
    const owners = await readClaimOwners(input.urlsTable, input.crawlId, taken, true);
    for (const url of taken) settle(url, owners.get(url) ?? '');
  }
  return { owned, claimed, ownedBefore, known };
}

/**
 * Pay the crawl's budget for the links this page owns and has not paid for yet, and say which of them are
 * admitted (paid now or before) and which the budget refused. A cancelled payment says why: the budget had
 * too few places (the next payment takes only those left), or the page's admission list has changed (it is
 * read back, and what is on it is not paid for again); a conflict with another page's payment is retried
 * after a pause.
 */
async function payFor(
  input: DiscoverInput,
  owned: readonly string[],
): Promise<{ admitted: string[]; refused: string[] }> {
  if (owned.length === 0) return { admitted: [], refused: [] };
  // Each link's entry, hashed once for every round.
  const entryOf = new Map(owned.map((url) => [url, admissionEntry(url)]));
  // The page's list as this attempt knows it: none, until a payment is refused for a longer one.
  let paid = new Set<string>();
  const isPaid = (url: string) => paid.has(entryOf.get(url) as string);
  let listLength = 0;
  let placesLeft = Number.POSITIVE_INFINITY;
  let conflicts = 0;
  for (let round = 1; ; round++) {
    // Each round pays, or learns the places left or the list as it is; a page racing many copies of
    // itself, or an answer without the item it should carry, must still end.
    if (round > MAX_PAYMENT_ROUNDS)
      throw new RetryableError(
        `payment for ${owned.length} links not settled in ${MAX_PAYMENT_ROUNDS} rounds`,
      );
    const unpaid = owned.filter((url) => !isPaid(url));
    if (unpaid.length === 0) return { admitted: [...owned], refused: [] };
    if (placesLeft <= 0) {
      exhausted.add(input.crawlId);
      return { admitted: owned.filter(isPaid), refused: unpaid };
    }
    const batch = unpaid.slice(0, Math.min(unpaid.length, placesLeft));
    const entries = batch.map((url) => entryOf.get(url) as string);
    try {
      await ddb.send(
        new TransactWriteCommand({
          TransactItems: [
            budgetDecrement(input.crawlsTable, input.crawlId, batch.length),
            admissionItem(
              input.urlsTable,
              input.crawlId,
              input.claimant,
              entries,
              listLength,
              input.ttlSeconds,
            ),
          ],
        }),
      );
      for (const entry of entries) paid.add(entry);
      listLength += entries.length;
      placesLeft -= batch.length;
    } catch (error) {
      if (!(error instanceof TransactionCanceledException)) throw error;
      const [budget, page] = error.CancellationReasons ?? [];
      let learned = false;
      if (budget?.Code === 'ConditionalCheckFailed') {
        placesLeft = placesLeftOf(budget.Item as Record<string, unknown> | undefined);
        learned = true;
      }
      if (page?.Code === 'ConditionalCheckFailed') {
        // Another attempt of this page paid meanwhile (or before): its list is the truth.
        const list = admissionsOf(page.Item as Record<string, unknown> | undefined);
        paid = new Set(list);
        listLength = list.length;
        learned = true;
      }
      if (!learned) {
        // TransactionConflict (or a throttled item): nothing was learned, so pause and try again.
        if (++conflicts > MAX_CONFLICTS)
          throw new RetryableError(
            `admission cancelled ${conflicts} times (${(error.CancellationReasons ?? []).map((r) => r.Code).join(',')})`,
            { cause: error },
          );
        await new Promise((r) => setTimeout(r, Math.random() * 25 * 2 ** Math.min(conflicts, 6)));
      }
    }
  }
}

/** Forget what this container knows (tests, and a crawl restarted under the same id). */
export function resetKnownLinks(): void {
  known.clear();
  exhausted.clear();
}
