import { ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { crawlBudget, listPages, listUrls, submitCrawl } from '../../cli/crawl-api';
import { redrive, waitFor, waitForIdle } from '../../tooling/queues';
import { compareRankings, exactRankingLocal, onlineRanking, RANKING_OUTPUTS } from '../../tooling/ranking';
import { requireOutputs } from '../../tooling/target';
import { startFaultProxy } from './fault-proxy';
import { type Harness, rankingFromSiteModel, startHarness } from './harness';
import { liveGroupLeases } from './leases';

// A crawl of the demo site while every request the functions make to SQS and DynamoDB goes through a
// fault-injecting proxy: errors, throttling, committed requests whose response is lost (so the SDK resends
// them) and late commits. The invariants are checked from the emulators' state and the site's request log.
// `npm test` runs one seed at moderate rates; `npm run test:chaos` runs CHAOS_SEEDS seeds at higher ones.
const SEED = Number(process.env.CHAOS_SEED ?? 20261123);
const SCALE = Number(process.env.CHAOS_SCALE ?? 1);
const rates = {
  error: 0.03 * SCALE,
  throttle: 0.02 * SCALE,
  dropAfterCommit: 0.03 * SCALE,
  delay: 0.05 * SCALE,
};

let h: Harness;
let sqsProxy: Awaited<ReturnType<typeof startFaultProxy>>;
let ddbProxy: Awaited<ReturnType<typeof startFaultProxy>>;

beforeAll(async () => {
  sqsProxy = await startFaultProxy({ ...rates, throttle: 0 }, SEED);
  ddbProxy = await startFaultProxy(rates, SEED + 1);
  h = await startHarness({
    sandbox: {
      // A short crawler timeout keeps the idempotency leases of failed attempts short (a lease lasts the
      // invocation's remaining time), so the test can wait them out before the redrive.
      timeoutOverrides: { FrontierConsumer: CRAWLER_TIMEOUT_MS },
      functionEnv: {
        AWS_ENDPOINT_URL_SQS: sqsProxy.endpoint,
        AWS_ENDPOINT_URL_DYNAMODB: ddbProxy.endpoint,
        POWERTOOLS_LOG_LEVEL: 'WARN',
      },
    },
  });
  sqsProxy.setUpstream(h.sandbox.emulators.sqsEndpoint);
  ddbProxy.setUpstream(h.sandbox.emulators.dynamodbEndpoint);
});
afterAll(async () => {
  await h?.stop();
  await sqsProxy?.stop();
  await ddbProxy?.stop();
});

const CRAWLER_TIMEOUT_MS = 15_000;
const NO_FAULTS = { error: 0, throttle: 0, dropAfterCommit: 0, delay: 0 };

/**
 * End the outage, then do what an operator does: wait for the leases of failed attempts to lapse and
 * redrive both DLQs until nothing moves. An attempt whose lease release was lost to a fault keeps its lease
 * until its invocation's time runs out. On AWS the next receive comes a visibility timeout (6 × the
 * function timeout) later, so it is always gone by then; the sandbox retries after 1 s, hence the wait.
 */
async function endOutageAndRedrive(): Promise<void> {
  sqsProxy.setRates(NO_FAULTS);
  ddbProxy.setRates(NO_FAULTS);
  await waitFor(
    'the leases of failed attempts to lapse',
    async () => (await liveGroupLeases(h.target.ddb, h.target.outputs.UrlsTableName)) === 0,
    { timeoutMs: CRAWLER_TIMEOUT_MS + 30_000, intervalMs: 500 },
  );
  for (let round = 0; round < 3; round++) {
    let moved = 0;
    for (const queue of ['frontier', 'parse', 'links']) moved += (await redrive(h.target, queue)).moved;
    if (moved === 0) break;
    await waitForIdle(h.target, 120_000);
  }
}

/** URLs of the messages in a DLQ, left in place (visibility 0). */
async function peekUrls(queueUrl: string): Promise<string[]> {
  const urls: string[] = [];
  for (let i = 0; i < 20; i++) {
    const out = await h.target.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, VisibilityTimeout: 0 }),
    );
    if (!out.Messages?.length) break;
    urls.push(...out.Messages.map((m) => String(JSON.parse(m.Body ?? '{}').payload?.url)));
    if (urls.length >= 200) break;
  }
  return [...new Set(urls)];
}

describe(`chaos: faults between the functions and the emulators (seed ${SEED}, scale ${SCALE})`, () => {
  it('gives every URL an outcome under faults, invents no page, and after a redrive stores exactly the fault-free crawl', async () => {
    // Deep enough for every regular page whatever order links are found in under faults; only the trap is cut.
    const maxDepth = 20;
    // One send of page links to the ranker fails whatever the seed draws: the parser sends them in one
    // attempt, so the pages it carried are redelivered and their links sent again marked as repeats, which
    // the online counts must bound. The seeded faults cause repeats too, but not in every run.
    const linksQueue = String(h.target.outputs.LinksQueueUrl).split('/').pop() as string;
    sqsProxy.failNext(
      (operation, body) => operation.endsWith('.SendMessageBatch') && body.includes(linksQueue),
    );
    const crawlId = await submitCrawl(h.target, { seeds: h.demo.seeds, maxPages: 10_000, maxDepth });
    await waitForIdle(h.target, 240_000);

    // The faults really happened.
    for (const proxy of [sqsProxy, ddbProxy]) {
      expect(proxy.counts.error).toBeGreaterThan(0);
      expect(proxy.counts.dropAfterCommit).toBeGreaterThan(0);
    }
    expect(ddbProxy.counts.throttle).toBeGreaterThan(0);
    expect(sqsProxy.counts.targeted).toBe(1);

    // During the outage: every URL has an outcome (dead-lettered ones included), nothing is invented,
    // and every DLQ message belongs to a URL whose outcome says where it stopped.
    const expected = h.demo.expected(maxDepth);
    const during = await listUrls(h.target, crawlId);
    expect(during.filter((u) => !u.outcome).map((u) => u.url)).toEqual([]);
    const outcomeDuring = new Map(during.map((u) => [String(u.url), u.outcome as string | undefined]));
    const storedDuring = (await listPages(h.target, crawlId)).map((p) => String(p.url));
    expect(storedDuring.filter((u) => !expected.stored.has(u))).toEqual([]);
    for (const url of await peekUrls(h.target.outputs.FrontierDlqUrl))
      expect(outcomeDuring.get(url), `frontier DLQ: ${url}`).toBe('dead-lettered');
    for (const url of await peekUrls(h.target.outputs.ParseDlqUrl))
      expect(outcomeDuring.get(url), `parse DLQ: ${url}`).toBe('fetched');

    // The outage ends and the operator redrives the DLQs: then the crawl is exactly the fault-free one.
    await endOutageAndRedrive();
    const urls = await listUrls(h.target, crawlId);
    const outcome = new Map(urls.map((u) => [String(u.url), u.outcome as string | undefined]));
    expect(urls.filter((u) => !u.outcome || u.outcome === 'dead-lettered').map((u) => u.url)).toEqual([]);
    const stored = (await listPages(h.target, crawlId)).map((p) => String(p.url)).sort();
    expect(stored).toEqual([...expected.stored].sort());
    for (const url of expected.skippedRobots) expect(outcome.get(url), url).toBe('skipped-robots');
    for (const [url, reason] of expected.failed) expect(outcome.get(url), url).toBe(reason);

    // A URL is fetched again only when its message was retried: never more often than it can be received
    // (maxReceiveCount, plus the redrive's receives).
    for (const [path, n] of h.demo.hits) expect(n, path).toBeLessThanOrEqual(2 * 5);

    // The ranking under the same faults: the exact one is the fault-free one, and the online counts lose
    // nothing and exceed it by no more than the bound the ranker reports.
    const t = { ...h.target, outputs: requireOutputs(h.target.outputs, RANKING_OUTPUTS, 'chaos') };
    const exact = await exactRankingLocal(t, crawlId);
    expect(exact).toEqual(rankingFromSiteModel(h.demo, expected.stored));
    const online = await onlineRanking(t, crawlId);
    const diff = compareRankings(online.ranking, exact);
    expect(online.summary.repeats).toBeGreaterThan(0);
    expect(diff.missing).toBe(0);
    expect(diff.overcount).toBeLessThanOrEqual(online.summary.overcountBound);
  }, 300_000);

  it('spends the page budget exactly under faults: maxPages URLs admitted, each once, the rest refused', async () => {
    // Admission is a small share of the requests, so lost responses and failed sends come often here: the
    // retries they cause are what used to spend a place twice.
    sqsProxy.setRates({ error: 0.1 * SCALE, throttle: 0, dropAfterCommit: 0.1 * SCALE, delay: 0.05 });
    ddbProxy.setRates({
      error: 0.05 * SCALE,
      throttle: 0.02 * SCALE,
      dropAfterCommit: 0.15 * SCALE,
      delay: 0.05,
    });
    const before = { ...ddbProxy.counts };
    // Well under the site's size, so the budget, not the site, ends the crawl.
    const maxPages = 60;
    const crawlId = await submitCrawl(h.target, { seeds: h.demo.seeds, maxPages, maxDepth: 20 });
    await waitForIdle(h.target, 240_000);
    expect(ddbProxy.counts.dropAfterCommit).toBeGreaterThan(before.dropAfterCommit);

    await endOutageAndRedrive();

    // A claimed URL (seeds included) is an admitted one: exactly maxPages of them, each with the crawler's
    // outcome, and the counter spent exactly that much. Every other URL was refused and never fetched.
    const urls = await listUrls(h.target, crawlId);
    const reachedCrawler = urls.filter((u) => u.outcome && u.outcome !== 'budget-exhausted');
    expect(reachedCrawler).toHaveLength(maxPages);
    const admitted = urls.filter((u) => u.claimedBy);
    expect(admitted).toHaveLength(maxPages);
    expect(await crawlBudget(h.target, crawlId)).toEqual({ maxPages, admitted: maxPages });
    expect(
      admitted.filter((u) => !u.outcome || u.outcome === 'budget-exhausted' || u.outcome === 'dead-lettered'),
    ).toEqual([]);
    expect(urls.filter((u) => !u.claimedBy && u.outcome !== 'budget-exhausted')).toEqual([]);
    const stored = new Set((await listPages(h.target, crawlId)).map((p) => String(p.url)));
    const admittedUrls = new Set(admitted.map((u) => String(u.url)));
    expect([...stored].filter((u) => !admittedUrls.has(u))).toEqual([]);
    expect(stored.size).toBe(admitted.filter((u) => u.outcome === 'fetched').length);
  }, 300_000);
});
