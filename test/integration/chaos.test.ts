import { ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listPages, listUrls, submitCrawl, waitForIdle } from '../../cli/crawl-api';
import { startFaultProxy } from './fault-proxy';
import { type Harness, startHarness } from './harness';

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

async function drain(queueUrl: string): Promise<string[]> {
  const out = await h.target.sqs.send(
    new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, VisibilityTimeout: 0 }),
  );
  return (out.Messages ?? []).map((m) => String(JSON.parse(m.Body ?? '{}').payload?.url));
}

describe(`chaos: faults between the functions and the emulators (seed ${SEED}, scale ${SCALE})`, () => {
  it('ends with every URL given an outcome, no page lost or invented, and each fetch explained', async () => {
    const maxDepth = 6;
    const crawlId = await submitCrawl(h.target, { seeds: h.demo.seeds, maxPages: 10_000, maxDepth });
    await waitForIdle(h.target, 240_000);

    // The faults really happened.
    for (const proxy of [sqsProxy, ddbProxy]) {
      expect(proxy.counts.error).toBeGreaterThan(0);
      expect(proxy.counts.dropAfterCommit).toBeGreaterThan(0);
    }
    expect(ddbProxy.counts.throttle).toBeGreaterThan(0);

    const urls = await listUrls(h.target, crawlId);
    const outcome = new Map(urls.map((u) => [String(u.url), u.outcome as string | undefined]));
    expect(urls.filter((u) => !u.outcome).map((u) => u.url)).toEqual([]);

    const expected = h.demo.expected(maxDepth);
    const stored = new Set((await listPages(h.target, crawlId)).map((p) => String(p.url)));
    // Nothing stored that a correct crawl would not store.
    expect([...stored].filter((u) => !expected.stored.has(u))).toEqual([]);
    // Every page a correct crawl stores is stored, or its URL says why not (a message that exhausted its
    // receives under faults is dead-lettered, and its parse or fetch is in a DLQ).
    const frontierDlq = await drain(h.target.outputs.FrontierDlqUrl);
    const parseDlq = await drain(h.target.outputs.ParseDlqUrl);
    for (const url of expected.stored) {
      if (stored.has(url)) continue;
      const why = outcome.get(url);
      const explained =
        (why === 'dead-lettered' && frontierDlq.includes(url)) ||
        (why === 'fetched' && parseDlq.includes(url));
      expect(explained, `${url} not stored (outcome ${why})`).toBe(true);
    }
    // Outcomes of the non-page URLs are the fault-free ones.
    for (const url of expected.skippedRobots) expect(outcome.get(url), url).toBe('skipped-robots');

    // A URL is fetched again only when its message was retried; never more often than it was received.
    for (const [path, n] of h.demo.hits) expect(n, path).toBeLessThanOrEqual(5 + 1);
  }, 300_000);
});
