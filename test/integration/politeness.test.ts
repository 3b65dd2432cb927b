import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listPages, listUrls, submitCrawl } from '../../cli/crawl-api';
import { stages } from '../../lib/config';
import { waitForIdle } from '../../tooling/queues';
import { type Harness, startHarness } from './harness';

const lanes = stages.dev?.crawl.maxFetchesPerHost ?? 0;

let h: Harness;
beforeAll(async () => {
  // Every page takes 100 ms to answer, so fetches the crawler runs side by side meet at the site.
  h = await startHarness({ demo: { latencyMs: 100 } });
});
afterAll(async () => {
  await h?.stop();
});

describe('per-host politeness, seen by the site', () => {
  it('fetches a host that sets no Crawl-delay a few pages at a time, and one that sets one a page at a time', async () => {
    expect(lanes).toBeGreaterThan(1);
    const [a, b, c] = h.demo.hosts as [string, string, string];
    const maxDepth = 1;
    const crawlId = await submitCrawl(h.target, {
      seeds: [`http://${c}/`, `http://${b}/`],
      maxPages: 1000,
      maxDepth,
    });
    await waitForIdle(h.target, 90_000);

    // Host c has no robots.txt, so no Crawl-delay: its fetches overlapped, never more than the stage allows.
    expect(h.demo.peakInFlight.get(c)).toBeGreaterThan(1);
    expect(h.demo.peakInFlight.get(c)).toBeLessThanOrEqual(lanes);
    // Host b's sets Crawl-delay: 0.01: one request at a time, robots.txt included.
    expect(h.demo.peakInFlight.get(b)).toBe(1);
    expect(h.demo.peakInFlight.has(a)).toBe(false);

    // Side by side or not, each page is fetched and stored once, and every URL has its outcome.
    const expected = [...h.demo.expected(maxDepth).stored].filter((u) => [b, c].includes(new URL(u).host));
    const pages = await listPages(h.target, crawlId);
    expect(pages.map((p) => String(p.url)).sort()).toEqual(expected.sort());
    for (const url of expected) expect(h.demo.hits.get(url.replace('http://', '')), url).toBe(1);
    expect((await listUrls(h.target, crawlId)).filter((u) => !u.outcome)).toEqual([]);
  });
});
