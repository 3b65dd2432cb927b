import { randomUUID } from 'node:crypto';
import { SendMessageBatchCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { DeleteCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { crawlBudget, listPages, listUrls, submitCrawl } from '../../cli/crawl-api';
import type { ParseMessage } from '../../functions/crawl/schemas';
import { peekDlq, redrive, waitFor, waitForIdle } from '../../tooling/queues';
import { compareRankings, exactRankingLocal, onlineRanking, RANKING_OUTPUTS } from '../../tooling/ranking';
import { requireOutputs } from '../../tooling/target';
import { expectedFixtureCrawl } from './fixture-site';
import { parsePageEntry, parsePageMessage } from './messages';
import { type ConnectedTarget, connectTarget, TARGET_TIMEOUTS, targetKind } from './target';

// Runs unchanged against the sandbox (in `npm test`), LocalStack (`npm run test:localstack`) and AWS
// (`npm run test:aws`). It drives only the parser with messages it writes itself, so it needs no website the
// deployed functions can reach; the crawler fetches of discovered links go to a reserved .invalid host.
let t: ConnectedTarget;
const crawlIds: string[] = [];
beforeAll(async () => {
  t = await connectTarget();
});
afterAll(async () => {
  if (t?.kind !== 'sandbox') {
    // Remove what the suite created on a shared stack.
    for (const crawlId of crawlIds) {
      // Stored pages are URL records, so listUrls has them too.
      for (const item of await listUrls(t.target, crawlId))
        await t.target.ddb.send(
          new DeleteCommand({ TableName: t.target.outputs.UrlsTableName, Key: { crawlId, url: item.url } }),
        );
      await t.target.ddb.send(
        new DeleteCommand({ TableName: t.target.outputs.CrawlsTableName, Key: { crawlId } }),
      );
    }
  }
  await t?.stop();
});

const HOST = 'pipeline-test.invalid';

async function newCrawl(maxPages = 50): Promise<string> {
  const crawlId = `portable-${randomUUID()}`;
  crawlIds.push(crawlId);
  await submitCrawl(t.target, { crawlId, seeds: [`http://${HOST}/`], maxPages, maxDepth: 2 });
  return crawlId;
}

const parseMessage = (crawlId: string, path: string, html: string, fetchedAt?: number): ParseMessage =>
  parsePageMessage(crawlId, `http://${HOST}${path}`, html, fetchedAt);

const send = (m: ParseMessage | string) =>
  t.target.sqs.send(
    new SendMessageCommand({
      QueueUrl: t.target.outputs.ParseQueueUrl,
      MessageBody: typeof m === 'string' ? m : JSON.stringify(m),
    }),
  );

describe(`portable pipeline checks (${targetKind()})`, {
  timeout: TARGET_TIMEOUTS[targetKind()].testMs,
}, () => {
  // The one test that crawls a real website through the deployed crawler: the fixture site is served next to
  // every target that can reach one (AWS needs FIXTURE_SITE_URL: the same files on any public host).
  if (targetKind() !== 'aws' || process.env.FIXTURE_SITE_URL)
    it('crawls the fixture site: stores its pages once each, and records robots, 404 and non-HTML outcomes', async () => {
      const root = t.fixtureSiteUrl as string;
      const maxDepth = 2;
      const expected = expectedFixtureCrawl(root, maxDepth);
      const crawlId = `portable-site-${randomUUID()}`;
      crawlIds.push(crawlId);
      await submitCrawl(t.target, { crawlId, seeds: [root], maxPages: 50, maxDepth });
      const urls = await waitFor(
        'every URL of the fixture site to have its outcome',
        async () => {
          const u = await listUrls(t.target, crawlId);
          return u.length >= expected.outcomes.size && u.every((r) => r.outcome) ? u : undefined;
        },
        { timeoutMs: t.effectTimeoutMs },
      );
      expect(new Map(urls.map((u) => [String(u.url), u.outcome]))).toEqual(expected.outcomes);
      const pages = await waitFor(
        'the fetched pages to be stored',
        async () => {
          const p = await listPages(t.target, crawlId);
          return p.length >= expected.stored.size ? p : undefined;
        },
        { timeoutMs: t.effectTimeoutMs },
      );
      expect(pages.map((p) => String(p.url)).sort()).toEqual([...expected.stored].sort());
      expect(pages.find((p) => p.url === new URL('/c.html', root).href)?.title).toBe('Fixture C');
    });

  it('stores a page once and claims each of its links once when its parse message arrives five times at once', async () => {
    const crawlId = await newCrawl();
    const m = parseMessage(crawlId, '/parent', `<title>parent</title><a href="/x">x</a><a href="/y">y</a>`);
    await t.target.sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: t.target.outputs.ParseQueueUrl,
        Entries: [0, 1, 2, 3, 4].map((i) => ({ Id: String(i), MessageBody: JSON.stringify(m) })),
      }),
    );
    const claims = await waitFor(
      'the links to be claimed',
      async () => {
        const c = (await listUrls(t.target, crawlId)).filter((u) => u.claimedBy === m.payload.url);
        return c.length >= 2 ? c : undefined;
      },
      { timeoutMs: t.effectTimeoutMs },
    );
    expect(claims.map((c) => c.url).sort()).toEqual([`http://${HOST}/x`, `http://${HOST}/y`]);
    const pages = (await listPages(t.target, crawlId)).filter((p) => p.url === m.payload.url);
    expect(pages.map((p) => p.title)).toEqual(['parent']);

    // The ranking of the same five deliveries: exactly one link to each, and online never below that nor
    // above it by more than the bound the ranker reports (the four repeats are marked as such).
    const rt = {
      ...t.target,
      outputs: requireOutputs(t.target.outputs, RANKING_OUTPUTS, 'the portable suite'),
    };
    const online = await waitFor(
      'the ranker to count all five page-links messages',
      async () => {
        const o = await onlineRanking(rt, crawlId);
        return o.summary.pages >= 5 ? o : undefined;
      },
      { timeoutMs: t.effectTimeoutMs },
    );
    const exact = await exactRankingLocal(rt, crawlId);
    expect(exact).toEqual([
      { url: `http://${HOST}/x`, inlinks: 1 },
      { url: `http://${HOST}/y`, inlinks: 1 },
    ]);
    expect(online.summary.repeats).toBeGreaterThanOrEqual(4);
    const diff = compareRankings(online.ranking, exact);
    expect(diff.missing).toBe(0);
    expect(diff.overcount).toBeLessThanOrEqual(online.summary.overcountBound);
  });

  it('admits discovered links only up to the page budget, spends each place once, and records the rest as budget-exhausted', async () => {
    // maxPages 5: the seed holds one place, so 4 of the page's 12 new links are admitted.
    const crawlId = await newCrawl(5);
    const links = Array.from({ length: 12 }, (_, i) => `<a href="/b${i}">${i}</a>`).join('');
    const m = parseMessage(crawlId, '/budget', `<title>budget</title>${links}`);
    // Delivered twice: the second parse finds the admitted links claimed and spends nothing again.
    await send(m);
    await send(m);
    const isLink = (u: Record<string, unknown>) => /\/b\d+$/.test(String(u.url));
    const found = await waitFor(
      'all 12 links recorded: 4 claimed by the page, 8 refused',
      async () => {
        const c = (await listUrls(t.target, crawlId)).filter(isLink);
        return c.length === 12 && c.filter((u) => u.outcome === 'budget-exhausted').length === 8
          ? c
          : undefined;
      },
      { timeoutMs: t.effectTimeoutMs },
    );
    const admitted = found.filter((u) => u.claimedBy === m.payload.url);
    expect(admitted).toHaveLength(4);
    expect(admitted.filter((u) => u.outcome === 'budget-exhausted')).toEqual([]);
    await waitForIdle(t.target, t.effectTimeoutMs);
    const after = (await listUrls(t.target, crawlId)).filter(isLink);
    expect(after.filter((u) => u.outcome === 'budget-exhausted' && !u.claimedBy)).toHaveLength(8);
    expect(await crawlBudget(t.target, crawlId)).toEqual({ maxPages: 5, admitted: 5 });
  });

  it('keeps the newer page when an older fetch of the same URL arrives later', async () => {
    const crawlId = await newCrawl();
    const newer = parseMessage(crawlId, '/versioned', '<title>newer</title>');
    const older = parseMessage(
      crawlId,
      '/versioned',
      '<title>older</title>',
      newer.payload.fetchedAt - 60_000,
    );
    await send(newer);
    await waitFor(
      'the newer page',
      async () => (await listPages(t.target, crawlId)).some((p) => p.title === 'newer'),
      {
        timeoutMs: t.effectTimeoutMs,
      },
    );
    await send(older);
    await waitForIdle(t.target, t.effectTimeoutMs);
    const page = (await listPages(t.target, crawlId)).find((p) => p.url === newer.payload.url);
    expect([page?.title, page?.fetchedAt]).toEqual(['newer', newer.payload.fetchedAt]);
  });

  it('parks a schema-invalid message in the DLQ with its reason, redrives it, and stores its valid batch-mates', async () => {
    const crawlId = await newCrawl();
    // Both with the page body in the binary attribute, as the crawler sends them: the parked one must keep it.
    const good = parsePageEntry(crawlId, `http://${HOST}/valid`, '<title>valid</title>');
    const invalid = parsePageEntry(crawlId, `http://${HOST}/invalid`, '<title>invalid</title>');
    const bodyBytes = invalid.MessageAttributes.body?.BinaryValue?.byteLength;
    const queue = { QueueUrl: t.target.outputs.ParseQueueUrl };
    await t.target.sqs.send(
      new SendMessageCommand({
        ...queue,
        ...invalid,
        MessageBody: JSON.stringify({ ...JSON.parse(invalid.MessageBody), version: 7 }),
      }),
    );
    await t.target.sqs.send(new SendMessageCommand({ ...queue, ...good }));
    const parked = await waitFor(
      'the invalid message in the parse DLQ',
      async () => (await peekDlq(t.target, 'parse')).find((e) => e.body.includes(crawlId)),
      { timeoutMs: t.effectTimeoutMs },
    );
    expect(parked.reason).toMatch(/version: Invalid input/);
    expect(parked.attributes).toEqual({ body: bodyBytes });
    await waitFor(
      'the valid page',
      async () => (await listPages(t.target, crawlId)).some((p) => p.title === 'valid'),
      {
        timeoutMs: t.effectTimeoutMs,
      },
    );
    // Redriving an invalid message sends it straight back: the DLQ path is stable, nothing is lost.
    const result = await redrive(t.target, 'parse');
    expect(result.method).toBe(
      t.target.supportsMessageMoveTask ? 'message-move-task' : 'receive-send-delete',
    );
    if (result.method === 'receive-send-delete') expect(result.moved).toBeGreaterThanOrEqual(1);
    // It went through the parser again and was forwarded anew: same body, new message id, original gone.
    const back = await waitFor(
      'the invalid message back in the DLQ as a new message',
      async () =>
        (await peekDlq(t.target, 'parse')).find(
          (e) => e.body.includes(crawlId) && e.messageId !== parked.messageId,
        ),
      { timeoutMs: t.effectTimeoutMs },
    );
    expect(back.reason).toMatch(/version: Invalid input/);
    expect(back.attributes).toEqual({ body: bodyBytes });
    expect((await peekDlq(t.target, 'parse')).some((e) => e.messageId === parked.messageId)).toBe(false);
  });
});
