import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listPages, listUrls, submitCrawl } from '../../cli/crawl-api';
import { frontierGroupId } from '../../functions/crawl/url';
import { waitForIdle } from '../../tooling/queues';
import { type Harness, recordsHandled, startHarness } from './harness';
import { leasedGroups } from './leases';

let h: Harness;
beforeAll(async () => {
  // The frontier's visibility timeout (2 s) is shorter than the slow page (3 s): SQS hands the message to
  // a second poller while the first is still fetching.
  h = await startHarness({
    sandbox: { visibilityTimeoutSeconds: 2, functionEnv: { FETCH_TIMEOUT_MS: '10000' } },
    demo: { slowMs: 3_000 },
  });
});
afterAll(async () => {
  await h?.stop();
});

describe('visibility timeout expiring during slow processing', () => {
  it('redelivers the message but the page is fetched, handed on and stored once', async () => {
    const host = h.demo.hosts[0] as string;
    const url = `http://${host}/slow`;
    const crawlId = await submitCrawl(h.target, { seeds: [url], maxPages: 10, maxDepth: 0 });
    await waitForIdle(h.target, 60_000);
    expect(recordsHandled(h, 'FrontierConsumer')).toBeGreaterThanOrEqual(2);
    expect(h.demo.hits.get(`${host}/slow`)).toBe(1);
    expect((await listPages(h.target, crawlId)).map((p) => p.url)).toEqual([url]);
    expect((await listUrls(h.target, crawlId)).find((u) => u.url === url)?.outcome).toBe('fetched');
    // A visibility timeout shorter than the invocation is exactly when the first receive needs its lease.
    expect(await leasedGroups(h.target.ddb, h.target.outputs.UrlsTableName)).toContain(frontierGroupId(url));
  });
});
