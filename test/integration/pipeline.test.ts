import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { brotliCompressSync } from 'node:zlib';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import {
  PurgeQueueCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
} from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listPages, listUrls, submitCrawl } from '../../cli/crawl-api';
import { frontierMessage } from '../../functions/crawl/frontier';
import type { ParseMessage } from '../../functions/crawl/schemas';
import { hostKey, urlHash } from '../../functions/crawl/url';
import { stages } from '../../lib/config';
import { stackStatus, waitFor, waitForIdle } from '../../tooling/queues';
import { type Harness, recordsHandled, startHarness } from './harness';
import { leasedGroups } from './leases';
import { parsePageEntry, parsePageMessage } from './messages';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.stop();
});

/** A crawl job with no seeds fetched yet: only what a test sends itself runs under it. */
async function emptyCrawl(hosts: string[], maxDepth = 3): Promise<string> {
  const crawlId = `t-${randomUUID()}`;
  // A seed on an unrouted path of the first host; its fetch is a 404 outcome, harmless to the assertions.
  await submitCrawl(h.target, {
    crawlId,
    seeds: [`http://${hosts[0]}/seed-${crawlId}`],
    maxPages: 1000,
    maxDepth,
    allowedHosts: hosts,
  });
  return crawlId;
}

async function dlqMessages(queueUrl: string) {
  const out = await h.target.sqs.send(
    new ReceiveMessageCommand({
      QueueUrl: queueUrl,
      MaxNumberOfMessages: 10,
      MessageAttributeNames: ['All'],
      VisibilityTimeout: 0,
    }),
  );
  return out.Messages ?? [];
}

describe('pipeline delivery guarantees (sandbox: fauxqs + DynamoDB Local)', () => {
  it('crawls the demo site storing exactly the reachable in-scope pages, each once, with an outcome for every URL', async () => {
    const maxDepth = 20;
    const crawlId = await submitCrawl(h.target, { seeds: h.demo.seeds, maxPages: 10_000, maxDepth });
    await waitForIdle(h.target, 180_000);
    const expected = h.demo.expected(maxDepth);

    const pages = await listPages(h.target, crawlId);
    const stored = pages.map((p) => String(p.url)).sort();
    expect(stored).toEqual([...expected.stored].sort());
    expect(new Set(stored).size).toBe(stored.length);
    // The trap stops at the depth limit: /trap/1 … /trap/20.
    expect(stored.filter((u) => u.includes('/trap/'))).toHaveLength(maxDepth);

    const urls = await listUrls(h.target, crawlId);
    const withoutOutcome = urls.filter((u) => !u.outcome).map((u) => u.url);
    expect(withoutOutcome).toEqual([]);
    const outcome = (url: string) => urls.find((u) => u.url === url)?.outcome;
    for (const url of expected.skippedRobots) expect(outcome(url), url).toBe('skipped-robots');
    for (const [url, reason] of expected.failed) expect(outcome(url), url).toBe(reason);

    // Each stored page was fetched from the site once (the redirect source shares its target's fetch).
    for (const url of stored) {
      const u = new URL(url);
      if (u.pathname === '/old-home') continue;
      expect(h.demo.hits.get(`${u.host}${u.pathname}`), url).toBe(
        u.pathname === '/' && u.host === h.demo.hosts[0] ? 2 : 1,
      );
    }
    // The body over the inline limit went through S3 and was still parsed.
    expect(pages.find((p) => String(p.url).endsWith('/big-ok'))?.title).toContain('/big-ok');
    const status = await stackStatus(h.target);
    expect(status.reduce((n, q) => n + q.dlq, 0)).toBe(0);

    // A first receive that its visibility timeout (6 × the crawler's timeout) outlasts takes no group lease:
    // only the hosts of a crawler invocation that failed a record, whose retry is a later receive, may have one.
    const retried = new Set(
      h.invocations
        .filter((i) => i.functionId.startsWith('FrontierConsumer') && (i.failed > 0 || i.outcome !== 'ok'))
        .flatMap((i) => Object.keys(i.groupSizes)),
    );
    const leased = await leasedGroups(h.target.ddb, h.target.outputs.UrlsTableName);
    expect(leased.filter((g) => !retried.has(g))).toEqual([]);

    // The functions' log is one JSON record per line (`jq . .sandbox/functions-*.log` works): no SDK notice,
    // no bare console warning from a library.
    const lines = readFileSync(h.sandbox.logFile, 'utf8')
      .split('\n')
      .filter((l) => l.trim());
    expect(lines.length).toBeGreaterThan(0);
    const notJson = lines.filter((l) => {
      try {
        return typeof JSON.parse(l) !== 'object';
      } catch {
        return true;
      }
    });
    expect(notJson.slice(0, 5)).toEqual([]);
    // The trap is a 20-hop chain: each hop is a pass through both queues.
  }, 120_000);

  it('admits exactly maxPages URLs while parsers race for the budget, and records each link it refused', async () => {
    const maxPages = 30;
    await expect(submitCrawl(h.target, { seeds: h.demo.seeds, maxPages: 2, maxDepth: 1 })).rejects.toThrow(
      '--max-pages (2) is below the number of seeds (4)',
    );
    const crawlId = await submitCrawl(h.target, { seeds: h.demo.seeds, maxPages, maxDepth: 20 });
    await waitForIdle(h.target, 120_000);
    const urls = await listUrls(h.target, crawlId);
    // Every URL record is either admitted and fetched to an outcome, or refused at admission.
    expect(urls.filter((u) => !u.outcome).map((u) => u.url)).toEqual([]);
    const refused = urls.filter((u) => u.outcome === 'budget-exhausted');
    expect(urls.length - refused.length).toBe(maxPages);
    expect(refused.length).toBeGreaterThan(0);
    const pages = await listPages(h.target, crawlId);
    expect(pages.length).toBeGreaterThan(0);
    expect(pages.length).toBeLessThanOrEqual(maxPages);
  });

  it('has one effect for a frontier message delivered three times', async () => {
    const host = h.demo.hosts[2] as string;
    const crawlId = await emptyCrawl([host]);
    const url = `http://${host}/page/3`;
    const body = JSON.stringify(frontierMessage(crawlId, 'dup', { url, depth: 0 }));
    const before = h.demo.hits.get(`${host}/page/3`) ?? 0;
    // Distinct dedup ids get past SQS's own deduplication, as a redelivery after the window would.
    await h.target.sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: h.target.outputs.FrontierQueueUrl,
        Entries: [0, 1, 2].map((i) => ({
          Id: String(i),
          MessageBody: body,
          MessageGroupId: hostKey(url),
          MessageDeduplicationId: `${urlHash(crawlId, url)}-${i}`,
        })),
      }),
    );
    await waitFor('the page to be stored', async () =>
      (await listPages(h.target, crawlId)).some((p) => p.url === url),
    );
    await waitForIdle(h.target);
    expect((h.demo.hits.get(`${host}/page/3`) ?? 0) - before).toBe(1);
    expect((await listPages(h.target, crawlId)).filter((p) => p.url === url)).toHaveLength(1);
  });

  it('has one effect for a parse message delivered six times concurrently', async () => {
    const host = h.demo.hosts[2] as string;
    const crawlId = await emptyCrawl([host]);
    const url = `http://${host}/dup-parent`;
    const html = `<title>parent</title><a href="/page/40">a</a><a href="/page/41">b</a>`;
    const body = JSON.stringify(parsePageMessage(crawlId, url, html));
    const before40 = h.demo.hits.get(`${host}/page/40`) ?? 0;
    const before41 = h.demo.hits.get(`${host}/page/41`) ?? 0;
    await h.target.sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: h.target.outputs.ParseQueueUrl,
        Entries: [0, 1, 2, 3, 4, 5].map((i) => ({ Id: String(i), MessageBody: body })),
      }),
    );
    await waitFor('both links to be stored', async () => (await listPages(h.target, crawlId)).length >= 3);
    await waitForIdle(h.target);
    const pages = await listPages(h.target, crawlId);
    expect(pages.filter((p) => p.url === url)).toHaveLength(1);
    expect((h.demo.hits.get(`${host}/page/40`) ?? 0) - before40).toBe(1);
    expect((h.demo.hits.get(`${host}/page/41`) ?? 0) - before41).toBe(1);
    const claims = (await listUrls(h.target, crawlId)).filter((u) => u.claimedBy === url);
    expect(claims.map((c) => c.url).sort()).toEqual([`http://${host}/page/40`, `http://${host}/page/41`]);
  });

  it('never lets an older fetch that arrives late overwrite a newer stored page', async () => {
    const host = h.demo.hosts[2] as string;
    const crawlId = await emptyCrawl([host], 0);
    const url = `http://${host}/versioned`;
    const newer = parsePageMessage(crawlId, url, '<title>newer fetch</title>');
    const older = parsePageMessage(crawlId, url, '<title>older fetch</title>');
    older.payload.fetchedAt = newer.payload.fetchedAt - 60_000;
    const send = (m: ParseMessage) =>
      h.target.sqs.send(
        new SendMessageCommand({ QueueUrl: h.target.outputs.ParseQueueUrl, MessageBody: JSON.stringify(m) }),
      );
    await send(newer);
    await waitFor('the newer page', async () =>
      (await listPages(h.target, crawlId)).find((p) => p.title === 'newer fetch'),
    );
    const from = h.invocations.length;
    await send(older);
    await waitFor(
      'the older message to be handled',
      async () => recordsHandled(h, 'ParseQueueConsumer', from) >= 1,
    );
    await waitForIdle(h.target);
    const pages = await listPages(h.target, crawlId);
    expect(pages.filter((p) => p.url === url).map((p) => [p.title, p.fetchedAt])).toEqual([
      ['newer fetch', newer.payload.fetchedAt],
    ]);
  });

  it('replaces a stored page with a newer fetch of it, and keeps the page once', async () => {
    const host = h.demo.hosts[2] as string;
    const crawlId = await emptyCrawl([host], 0);
    const url = `http://${host}/refetched`;
    const older = parsePageMessage(crawlId, url, '<title>older fetch</title>');
    const newer = parsePageMessage(crawlId, url, '<title>newer fetch</title>');
    newer.payload.fetchedAt = older.payload.fetchedAt + 60_000;
    for (const [m, title] of [
      [older, 'older fetch'],
      [newer, 'newer fetch'],
    ] as const) {
      await h.target.sqs.send(
        new SendMessageCommand({ QueueUrl: h.target.outputs.ParseQueueUrl, MessageBody: JSON.stringify(m) }),
      );
      await waitFor(`the ${title}`, async () =>
        (await listPages(h.target, crawlId)).find((p) => p.title === title),
      );
    }
    await waitForIdle(h.target);
    expect(
      (await listPages(h.target, crawlId)).filter((p) => p.url === url).map((p) => [p.title, p.fetchedAt]),
    ).toEqual([['newer fetch', newer.payload.fetchedAt]]);
  });

  it('retries only the record that throws, moves it to the DLQ after maxReceiveCount, and loses none of its batch-mates', async () => {
    const host = h.demo.hosts[2] as string;
    const crawlId = await emptyCrawl([host], 0);
    await waitForIdle(h.target);
    const good = Array.from({ length: 9 }, (_, i) =>
      parsePageMessage(crawlId, `http://${host}/mate/${i}`, `<title>mate ${i}</title>`),
    );
    const bad: ParseMessage = {
      ...parsePageMessage(crawlId, `http://${host}/poison`, ''),
      payload: {
        ...parsePageMessage(crawlId, `http://${host}/poison`, '').payload,
        body: { kind: 's3', encoding: 'br', bucket: 'no-such-bucket', key: 'bodies/x.br' },
      },
    };
    const from = h.invocations.length;
    await h.target.sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: h.target.outputs.ParseQueueUrl,
        Entries: [...good, bad].map((m, i) => ({ Id: String(i), MessageBody: JSON.stringify(m) })),
      }),
    );
    const inDlq = await waitFor(
      'the failing record in the parse DLQ',
      async () => (await dlqMessages(h.target.outputs.ParseDlqUrl)).find((m) => m.Body?.includes('/poison')),
      { timeoutMs: 60_000 },
    );
    expect(JSON.parse(inDlq.Body ?? '{}').payload.url).toBe(`http://${host}/poison`);
    await waitForIdle(h.target);
    const pages = await listPages(h.target, crawlId);
    expect(pages.map((p) => p.url).sort()).toEqual(good.map((g) => g.payload.url).sort());
    // 9 batch-mates handled once each, the poison record once per receive (maxReceiveCount 5).
    expect(recordsHandled(h, 'ParseQueueConsumer', from)).toBe(9 + 5);
    // Its URL says where it stopped: fetched (completed, so not fetched again), its page not stored.
    const poison = (await listUrls(h.target, crawlId)).find((u) => u.url === `http://${host}/poison`);
    expect(poison).toMatchObject({ outcome: 'fetched', idemStatus: 'COMPLETED' });
    expect(poison).not.toHaveProperty('fetchedAt');
  });

  it('sends an invalid message (schema, body missing, a decompression bomb, not Brotli, an oversized S3 body) straight to the DLQ with its reason, without retries or holding up others', async () => {
    const host = h.demo.hosts[2] as string;
    const crawlId = await emptyCrawl([host], 0);
    await waitForIdle(h.target);
    // Two pages with their body in the binary attribute, as the crawler sends them, and two inline, as
    // crawlers before it did: both forms parse.
    const good = [
      ...[0, 1].map((i) => parsePageEntry(crawlId, `http://${host}/ok/${i}`, `<title>ok ${i}</title>`)),
      ...[2, 3].map((i) => ({
        MessageBody: JSON.stringify(
          parsePageMessage(crawlId, `http://${host}/ok/${i}`, `<title>ok ${i}</title>`),
        ),
      })),
    ];
    const from = h.invocations.length;
    const marker = `not-json-${crawlId}`;
    const withBody = parsePageEntry(crawlId, `http://${host}/parked`, '<title>parked</title>');
    const badSchema = JSON.parse(withBody.MessageBody) as Record<string, unknown>;
    const missing = JSON.parse(parsePageEntry(crawlId, `http://${host}/no-body`, '').MessageBody);
    // A body the crawler never writes: one that decodes to 64 MiB, past the crawler's limit on a page, and
    // one that is not Brotli at all. Neither is decoded further than the limit, and neither is retried.
    const bomb = parsePageEntry(crawlId, `http://${host}/bomb`, '');
    const bombBody = brotliCompressSync(Buffer.alloc(64 * 1024 * 1024));
    const garbled = parsePageEntry(crawlId, `http://${host}/garbled`, '');
    // An S3 body larger than any the crawler writes (its cap is 2 MiB decoded): refused before it is read.
    const hugeKey = `bodies/${crawlId}/huge.br`;
    await h.target.s3.send(
      new PutObjectCommand({
        Bucket: h.target.outputs.BodiesBucketName,
        Key: hugeKey,
        Body: Buffer.alloc((stages.dev?.crawl.maxBodyBytes ?? 0) + 64 * 1024 + 1),
      }),
    );
    const hugeMessage = JSON.parse(parsePageEntry(crawlId, `http://${host}/huge`, '').MessageBody);
    hugeMessage.payload.body = {
      kind: 's3',
      encoding: 'br',
      bucket: h.target.outputs.BodiesBucketName,
      key: hugeKey,
    };
    await h.target.sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: h.target.outputs.ParseQueueUrl,
        Entries: [
          ...good.map((m, i) => ({ Id: `g${i}`, ...m })),
          { Id: 'bad-json', MessageBody: `{${marker}` },
          {
            Id: 'bad-schema',
            MessageBody: JSON.stringify({ ...badSchema, version: 99 }),
            MessageAttributes: withBody.MessageAttributes,
          },
          { Id: 'no-attribute', MessageBody: JSON.stringify(missing) },
          {
            Id: 'bomb',
            MessageBody: bomb.MessageBody,
            MessageAttributes: { body: { DataType: 'Binary', BinaryValue: bombBody } },
          },
          {
            Id: 'garbled',
            MessageBody: garbled.MessageBody,
            MessageAttributes: {
              body: { DataType: 'Binary', BinaryValue: Buffer.from('not brotli at all') },
            },
          },
          { Id: 'huge', MessageBody: JSON.stringify(hugeMessage) },
        ],
      }),
    );
    await waitForIdle(h.target);
    const pages = await listPages(h.target, crawlId);
    expect(pages.map((p) => p.title).sort()).toEqual(['ok 0', 'ok 1', 'ok 2', 'ok 3']);
    expect(recordsHandled(h, 'ParseQueueConsumer', from)).toBe(10);
    const dlq = await waitFor('the six invalid messages in the DLQ', async () => {
      const all = [
        ...(await dlqMessages(h.target.outputs.ParseDlqUrl)),
        ...(await dlqMessages(h.target.outputs.ParseDlqUrl)),
      ];
      const mine = all.filter(
        (m) =>
          m.Body?.includes(marker) ||
          m.Body?.includes('"version":99') ||
          ['/no-body', '/bomb', '/garbled', '/huge'].some((path) => m.Body?.includes(`${host}${path}"`)),
      );
      return new Set(mine.map((m) => m.Body)).size >= 6 ? mine : undefined;
    });
    const reasons = dlq.map((m) => m.MessageAttributes?.failureReason?.StringValue ?? '');
    expect(reasons.some((r) => /body is not JSON/.test(r))).toBe(true);
    expect(reasons.some((r) => /version: Invalid input/.test(r))).toBe(true);
    expect(reasons.some((r) => /binary attribute "body", and it has none/.test(r))).toBe(true);
    expect(reasons.some((r) => /page body decodes past \d+ bytes/.test(r))).toBe(true);
    expect(reasons.some((r) => /page body is not valid Brotli/.test(r))).toBe(true);
    expect(reasons.some((r) => /huge\.br is \d+ bytes, more than any body the crawler writes/.test(r))).toBe(
      true,
    );
    // A forwarded message that names its URL leaves it the fetched outcome, with no page stored.
    const urls = await listUrls(h.target, crawlId);
    for (const path of ['/no-body', '/bomb', '/garbled', '/huge']) {
      const unstored = urls.find((u) => u.url === `http://${host}${path}`);
      expect(unstored).toMatchObject({ outcome: 'fetched', idemStatus: 'COMPLETED' });
      expect(unstored).not.toHaveProperty('fetchedAt');
    }
    // The forwarded message keeps its own attributes: its body is still there for a redrive after a fix.
    const parked = dlq.find((m) => m.Body?.includes('"version":99'));
    expect(Buffer.from(parked?.MessageAttributes?.body?.BinaryValue ?? [])).toEqual(
      Buffer.from(withBody.MessageAttributes.body?.BinaryValue ?? []),
    );
  });

  it("starts each host's URLs in FIFO order, and a failing host does not stall the others", async () => {
    const [a, b] = [h.demo.hosts[0] as string, h.demo.hosts[1] as string];
    const crawlId = await emptyCrawl([a, b], 0);
    await waitForIdle(h.target);
    const aUrls = [9, 3, 27, 1, 14].map((n) => `http://${a}/page/${n}`);
    const bUrls = [`http://${b}/page/50`, `http://${b}/page/51`];
    const logStart = h.demo.requestLog.length;
    // Host B's first URL answers 503 until its retries run out; B's second URL must wait behind it.
    h.demo.setFailing(`${b}/page/50`, true);
    // One SendMessageBatch, so the records arrive in shared receive batches and the handler's ordering is what is tested.
    await h.target.sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: h.target.outputs.FrontierQueueUrl,
        Entries: [...bUrls, ...aUrls].map((url, i) => ({
          Id: String(i),
          MessageBody: JSON.stringify(frontierMessage(crawlId, 'order', { url, depth: 0 })),
          MessageGroupId: hostKey(url),
          MessageDeduplicationId: urlHash(crawlId, url),
        })),
      }),
    );
    await waitForIdle(h.target, 120_000);
    const log = h.demo.requestLog.slice(logStart).filter((l) => !l.endsWith('/robots.txt'));
    // Host A sets no Crawl-delay, so up to maxFetchesPerHost of its URLs fetch side by side: they start in
    // order, and a request can reach the site at most that many places early or late.
    const aOrder = log.filter((l) => l.startsWith(a)).map((l) => `http://${l}`);
    expect([...aOrder].sort()).toEqual([...aUrls].sort());
    const lanes = stages.dev?.crawl.maxFetchesPerHost ?? 1;
    for (const [i, url] of aUrls.entries())
      expect(Math.abs(aOrder.indexOf(url) - i), url).toBeLessThan(lanes);
    // Host B sets a Crawl-delay, so one URL at a time, in order.
    const bLog = log.filter((l) => l.startsWith(b));
    expect(bLog).toEqual([`${b}/page/50`, `${b}/page/50`, `${b}/page/50`, `${b}/page/51`]);
    // Host A finished before host B got past its failing URL.
    expect(log.indexOf(`${a}/page/14`)).toBeLessThan(log.indexOf(`${b}/page/51`));
    const urls = await listUrls(h.target, crawlId);
    expect(urls.find((u) => u.url === bUrls[0])).toMatchObject({ outcome: 'http-error', httpStatus: 503 });
    expect(urls.find((u) => u.url === bUrls[1])?.outcome).toBe('fetched');
  });

  it('redrives both DLQs back to their queues (receive-send-delete, as fauxqs lacks StartMessageMoveTask) and the messages then succeed', async () => {
    const host = h.demo.hosts[2] as string;
    const crawlId = await emptyCrawl([host], 0);
    await waitForIdle(h.target);
    // Earlier tests leave their poison messages in the DLQs; start from empty ones.
    for (const q of [h.target.outputs.ParseDlqUrl, h.target.outputs.FrontierDlqUrl]) {
      await h.target.sqs.send(new PurgeQueueCommand({ QueueUrl: q }));
    }
    const pageUrl = `http://${host}/page/5`;
    // Messages that failed earlier for a reason since fixed, parked in the DLQs; the parse message's body is in
    // its binary attribute, which the redrive must carry back.
    const parsed = parsePageEntry(crawlId, `http://${host}/redriven`, '<title>redriven</title>');
    await h.target.sqs.send(new SendMessageCommand({ QueueUrl: h.target.outputs.ParseDlqUrl, ...parsed }));
    await h.target.sqs.send(
      new SendMessageCommand({
        QueueUrl: h.target.outputs.FrontierDlqUrl,
        MessageBody: JSON.stringify(frontierMessage(crawlId, 'redrive', { url: pageUrl, depth: 0 })),
        MessageGroupId: hostKey(pageUrl),
        MessageDeduplicationId: urlHash(crawlId, pageUrl),
      }),
    );
    const { peekDlq, redrive } = await import('../../tooling/queues');
    expect((await peekDlq(h.target, 'parse')).map((e) => JSON.parse(e.body).payload.url)).toContain(
      `http://${host}/redriven`,
    );
    expect(await redrive(h.target, 'parse')).toEqual({ moved: 1, method: 'receive-send-delete' });
    expect(await redrive(h.target, 'frontier')).toEqual({ moved: 1, method: 'receive-send-delete' });
    await waitFor('both redriven messages to be processed', async () => {
      const urls = (await listPages(h.target, crawlId)).map((p) => p.url);
      return urls.includes(pageUrl) && urls.includes(`http://${host}/redriven`);
    });
    const redriven = (await listPages(h.target, crawlId)).find((p) => p.url === `http://${host}/redriven`);
    expect(redriven?.title).toBe('redriven');
    const status = await stackStatus(h.target);
    expect(status.reduce((n, q) => n + q.dlq, 0)).toBe(0);
  });
});
