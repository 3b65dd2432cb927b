import { randomUUID } from 'node:crypto';
import { ReceiveMessageCommand, SendMessageBatchCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listPages, listUrls, submitCrawl } from '../../cli/crawl-api';
import { frontierMessage } from '../../functions/crawl/frontier';
import { hostKey, urlHash } from '../../functions/crawl/url';
import { waitFor, waitForIdle } from '../../tooling/queues';
import { type Harness, startHarness } from './harness';

let h: Harness;
beforeAll(async () => {
  // No retryDelaySeconds: the sandbox leaves failed records alone, as Lambda does, so a failed record comes
  // back when the crawler set it to, or after the frontier's whole visibility timeout (6 minutes).
  h = await startHarness({ sandbox: { retryDelaySeconds: undefined } });
});
afterAll(async () => {
  await h?.stop();
});

/**
 * A crawl of demo host `i` whose seed is a 404: only what a test sends runs under it. Each test has a host,
 * so a FIFO group of its own, and the two 503 tests run side by side.
 */
async function crawlOfHost(i: number): Promise<{ crawlId: string; host: string }> {
  const host = h.demo.hosts[i] as string;
  const crawlId = `t-${randomUUID()}`;
  await submitCrawl(h.target, {
    crawlId,
    seeds: [`http://${host}/seed-${crawlId}`],
    maxPages: 100,
    maxDepth: 0,
    allowedHosts: [host],
  });
  await waitFor(
    `the seed of ${host}`,
    async () => (await listUrls(h.target, crawlId))[0]?.outcome !== undefined,
  );
  return { crawlId, host };
}

async function sendToFrontier(crawlId: string, urls: readonly string[]): Promise<void> {
  await h.target.sqs.send(
    new SendMessageBatchCommand({
      QueueUrl: h.target.outputs.FrontierQueueUrl,
      Entries: urls.map((url, i) => ({
        Id: String(i),
        MessageBody: JSON.stringify(frontierMessage(crawlId, 'retries', { url, depth: 0 })),
        MessageGroupId: hostKey(url),
        MessageDeduplicationId: urlHash(crawlId, url),
      })),
    }),
  );
}

const hits = (url: string) => h.demo.hits.get(url.replace('http://', '')) ?? 0;
/** When the site saw each request for a URL, in order (epoch ms). */
const requestTimes = (url: string) =>
  h.demo.requestLog.flatMap((l, i) => (`http://${l}` === url ? [h.demo.requestTimes[i] as number] : []));

async function frontierDlqIsEmpty(): Promise<boolean> {
  const out = await h.target.sqs.send(
    new ReceiveMessageCommand({ QueueUrl: h.target.outputs.FrontierDlqUrl, VisibilityTimeout: 0 }),
  );
  return (out.Messages ?? []).length === 0;
}

describe('fetch retries as Lambda leaves them (no sandbox retry delay)', () => {
  // Alone: it needs the URLs behind /slow sent within /slow's first 2 s, which a busy machine could miss.
  it("sends a page that times out to the back of its host's queue: the host's later URLs go first, and it gets its three attempts", async () => {
    const { crawlId, host } = await crawlOfHost(0);
    // /slow answers after 30 s, past the harness's 2 s fetch timeout, on every attempt.
    const slow = `http://${host}/slow`;
    const behind = Array.from({ length: 6 }, (_, i) => `http://${host}/page/${30 + i}`);
    const logStart = h.demo.requestLog.length;
    await sendToFrontier(crawlId, [slow]);
    await waitFor('the first fetch of /slow', async () => hits(slow) === 1);
    // Queued behind /slow's in-flight message in the same group: held back until that message is gone.
    await sendToFrontier(crawlId, behind);
    await waitForIdle(h.target, 90_000);

    const log = h.demo.requestLog.slice(logStart).map((l) => `http://${l}`);
    const second = log.indexOf(slow, log.indexOf(slow) + 1);
    expect(second).toBeGreaterThan(0);
    // Every URL behind /slow was fetched before /slow's second attempt: the group did not wait for it.
    for (const url of behind) {
      expect(log.indexOf(url), url).toBeGreaterThanOrEqual(0);
      expect(log.indexOf(url), url).toBeLessThan(second);
    }
    expect(hits(slow)).toBe(3);
    for (const url of behind) expect(hits(url), url).toBe(1);
    const urls = await listUrls(h.target, crawlId);
    expect(urls.find((u) => u.url === slow)?.outcome).toBe('timeout');
    for (const url of behind) expect(urls.find((u) => u.url === url)?.outcome, url).toBe('fetched');
    expect((await listPages(h.target, crawlId)).map((p) => String(p.url)).sort()).toEqual([...behind].sort());
    expect(await frontierDlqIsEmpty()).toBe(true);
  });

  it.concurrent('retries a 503 after the Retry-After the host asked for, and the URL queued behind it with it, not after the visibility timeout', async () => {
    const { crawlId, host } = await crawlOfHost(1);
    const failing = `http://${host}/page/40`;
    const behind = `http://${host}/page/41`;
    h.demo.setFailing(`${host}/page/40`, true, 2);
    const started = Date.now();
    await sendToFrontier(crawlId, [failing, behind]);
    await waitForIdle(h.target, 90_000);
    const took = Date.now() - started;
    h.demo.setFailing(`${host}/page/40`, false);

    const times = requestTimes(failing);
    expect(times).toHaveLength(3);
    const gaps = [(times[1] as number) - (times[0] as number), (times[2] as number) - (times[1] as number)];
    // SQS counts visibility in whole seconds and the poller adds its own steps; never sooner than asked.
    for (const gap of gaps) {
      expect(gap).toBeGreaterThanOrEqual(1_900);
      expect(gap).toBeLessThan(10_000);
    }
    // The whole run took seconds, where the visibility timeout alone is 360 s per retry.
    expect(took).toBeLessThan(60_000);
    expect(hits(behind)).toBe(1);
    const urls = await listUrls(h.target, crawlId);
    expect(urls.find((u) => u.url === failing)).toMatchObject({ outcome: 'http-error', httpStatus: 503 });
    expect(urls.find((u) => u.url === behind)?.outcome).toBe('fetched');
  });

  it.concurrent('backs a 503 without Retry-After off by attempt: about 5 s, then about 15 s', async () => {
    const { crawlId, host } = await crawlOfHost(2);
    const failing = `http://${host}/page/42`;
    h.demo.setFailing(`${host}/page/42`, true);
    await sendToFrontier(crawlId, [failing]);
    await waitForIdle(h.target, 90_000);
    h.demo.setFailing(`${host}/page/42`, false);

    const times = requestTimes(failing);
    expect(times).toHaveLength(3);
    const [first, second, third] = times as [number, number, number];
    // 5 s and 15 s within ±20%, plus the poller's long-poll step (1 s here) and the fetch.
    expect(second - first).toBeGreaterThanOrEqual(3_900);
    expect(second - first).toBeLessThan(9_000);
    expect(third - second).toBeGreaterThanOrEqual(11_900);
    expect(third - second).toBeLessThan(21_000);
    expect((await listUrls(h.target, crawlId)).find((u) => u.url === failing)?.outcome).toBe('http-error');
  });
});
