import { randomUUID } from 'node:crypto';
import { SendMessageBatchCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listPages, listUrls, submitCrawl } from '../../cli/crawl-api';
import { frontierMessage } from '../../functions/crawl/frontier';
import { hostKey, urlHash } from '../../functions/crawl/url';
import { stages } from '../../lib/config';
import { waitForIdle } from '../../tooling/queues';
import { type Harness, startHarness } from './harness';

const lanes = stages.dev?.crawl.maxFetchesPerHost ?? 0;

let h: Harness;
beforeAll(async () => {
  // Every page takes 100 ms to answer, so fetches the crawler runs side by side meet at the site.
  h = await startHarness({ demo: { latencyMs: 100, hostCount: 5 } });
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

  it("stops starting a host's URLs once one of its fetches fails, lets those in flight finish, and refetches none of them", async () => {
    const [, , , , e] = h.demo.hosts as [string, string, string, string, string];
    const crawlId = `t-${randomUUID()}`;
    await submitCrawl(h.target, {
      crawlId,
      seeds: [`http://${e}/seed-${crawlId}`],
      maxPages: 100,
      maxDepth: 0,
      allowedHosts: [e],
    });
    await waitForIdle(h.target, 60_000);
    // The first URL answers 503 until its retries run out; nine more of the same host come behind it.
    const failing = `http://${e}/page/20`;
    const behind = Array.from({ length: 9 }, (_, i) => `http://${e}/page/${21 + i}`);
    h.demo.setFailing(`${e}/page/20`, true);
    const logStart = h.demo.requestLog.length;
    await h.target.sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: h.target.outputs.FrontierQueueUrl,
        Entries: [failing, ...behind].map((url, i) => ({
          Id: String(i),
          MessageBody: JSON.stringify(frontierMessage(crawlId, 'lanes', { url, depth: 0 })),
          MessageGroupId: hostKey(url),
          MessageDeduplicationId: urlHash(crawlId, url),
        })),
      }),
    );
    await waitForIdle(h.target, 90_000);
    const hits = (url: string) => h.demo.hits.get(url.replace('http://', '')) ?? 0;
    // Once the 503 came back, no more of the host's URLs started in that receive: some of them waited for
    // the failing URL's retry (each page takes 100 ms, so starting all nine would outlast the 503).
    const log = h.demo.requestLog.slice(logStart);
    const retryAt = log.indexOf(`${e}/page/20`, log.indexOf(`${e}/page/20`) + 1);
    const beforeRetry = log.slice(0, retryAt).filter((l) => behind.includes(`http://${l}`));
    expect(beforeRetry.length).toBeGreaterThan(0);
    expect(beforeRetry.length).toBeLessThan(behind.length);
    // The failing URL was tried on each receive its transient retries allow, then given its outcome.
    expect(hits(failing)).toBe(3);
    // The URLs fetched beside it on its first receive were completed, so their redelivery replayed them:
    // every URL behind it was fetched once, however the receives split them.
    for (const url of behind) expect(hits(url), url).toBe(1);
    const urls = await listUrls(h.target, crawlId);
    expect(urls.find((u) => u.url === failing)).toMatchObject({ outcome: 'http-error', httpStatus: 503 });
    for (const url of behind) expect(urls.find((u) => u.url === url)?.outcome, url).toBe('fetched');
    expect((await listPages(h.target, crawlId)).map((p) => String(p.url)).sort()).toEqual([...behind].sort());
  });
});
