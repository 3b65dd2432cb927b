import { randomUUID } from 'node:crypto';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { ReceiveMessageCommand, SendMessageBatchCommand } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { Context, SQSRecord } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { listPages, submitCrawl } from '../../cli/crawl-api';
import { createCrawlJob } from '../../functions/crawl/crawl-record';
import { edgeLogPrefix } from '../../functions/crawl/link-graph';
import { pageLinksMessage } from '../../functions/crawl/schemas';
import { waitFor, waitForIdle } from '../../tooling/queues';
import {
  compareRankings,
  exactRankingLocal,
  onlineRanking,
  RANKING_OUTPUTS,
  type RankingTarget,
} from '../../tooling/ranking';
import { requireOutputs } from '../../tooling/target';
import { type Harness, rankingFromSiteModel, recordsHandled, startHarness } from './harness';
import { parsePageMessage } from './messages';

// The ranking end to end on fauxqs and DynamoDB Local: the parser sends each page's links, the ranker counts
// them online and writes the edge log, and DuckDB runs sql/inlinks.sql over the log in the sandbox's S3.
let h: Harness;
let t: RankingTarget;
beforeAll(async () => {
  h = await startHarness();
  t = { ...h.target, outputs: requireOutputs(h.target.outputs, RANKING_OUTPUTS, 'the ranking test') };
});
afterAll(async () => {
  await h?.stop();
});

/** A crawl job whose pages are only what a test sends: depth 0, so no link is followed. */
async function crawlOf(host: string): Promise<string> {
  const crawlId = `t-${randomUUID()}`;
  await createCrawlJob(
    t.outputs.CrawlsTableName as string,
    {
      crawlId,
      seeds: [`http://${host}/`],
      maxPages: 10,
      maxDepth: 0,
      allowedHosts: [host],
      createdAt: new Date().toISOString(),
    },
    3600,
    t.ddb,
  );
  return crawlId;
}

describe('ranking: online counts and the exact SQL ranking (sandbox)', () => {
  it('ranks the demo site exactly as its link model does, online and offline, from a batched edge log', async () => {
    const maxDepth = 20;
    const crawlId = await submitCrawl(h.target, { seeds: h.demo.seeds, maxPages: 10_000, maxDepth });
    await waitForIdle(h.target, 180_000);
    const pages = await listPages(h.target, crawlId);
    const expected = rankingFromSiteModel(h.demo, h.demo.expected(maxDepth).stored);
    expect(expected.length).toBeGreaterThan(150);

    const exact = await exactRankingLocal(t, crawlId);
    expect(exact).toEqual(expected);

    // No message was delivered twice in this run, so the online counts are exact too, and say so.
    const online = await onlineRanking(t, crawlId);
    expect(online.summary).toMatchObject({ repeats: 0, overcountBound: 0 });
    expect(online.summary.edges).toBe(expected.reduce((n, r) => n + r.inlinks, 0));
    expect(online.ranking).toEqual(expected);
    expect(compareRankings(online.ranking, exact)).toMatchObject({
      overcount: 0,
      missing: 0,
      topOverlap: 10,
    });

    // No PUT per page: the ranker writes one object per batch of many pages.
    const listed = await t.s3.send(
      new ListObjectsV2Command({ Bucket: t.outputs.EdgesBucketName, Prefix: edgeLogPrefix(crawlId) }),
    );
    const objects = listed.KeyCount ?? 0;
    expect(objects).toBeGreaterThan(0);
    expect(objects).toBeLessThanOrEqual(Math.ceil(pages.length / 4));
  }, 240_000);

  it('counts a page parsed three times three times online, once exactly, and bounds the difference', async () => {
    const host = 'site.test';
    const crawlId = await crawlOf(host);
    const url = `http://${host}/`;
    const targets = ['a', 'b', 'c', 'd', 'e'].map((p) => `http://${host}/${p}`);
    // Five in-scope links (one twice), a self-link and an off-site link: five edges.
    const html = `<title>hub</title>${[...targets, targets[0], url, 'http://elsewhere.test/x']
      .map((href) => `<a href="${href}">x</a>`)
      .join('')}`;
    const body = JSON.stringify(parsePageMessage(crawlId, url, html));
    // The same parse message delivered three times, as a crawler redelivery would.
    await h.target.sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: h.target.outputs.ParseQueueUrl,
        Entries: [0, 1, 2].map((i) => ({ Id: String(i), MessageBody: body })),
      }),
    );
    await waitFor('three page-links messages counted', async () =>
      (await onlineRanking(t, crawlId)).summary.pages >= 3 ? true : undefined,
    );
    await waitForIdle(h.target);
    const online = await onlineRanking(t, crawlId);
    const exact = await exactRankingLocal(t, crawlId);
    expect(exact).toEqual(targets.map((u) => ({ url: u, inlinks: 1 })));
    expect(online.ranking).toEqual(targets.map((u) => ({ url: u, inlinks: 3 })));
    // Two of the three parses found the page already stored, so their links are marked as repeats.
    expect(online.summary).toMatchObject({ pages: 3, edges: 15, repeats: 2, overcountBound: 10 });
    const diff = compareRankings(online.ranking, exact);
    expect(diff).toMatchObject({ overcount: 10, missing: 0, maxDiff: 2 });
    expect(diff.overcount).toBeLessThanOrEqual(online.summary.overcountBound);
  });

  it('marks the links of a page fetched again as repeats, so a newer fetch stays within the bound', async () => {
    const host = 'refetch.test';
    const crawlId = await crawlOf(host);
    const url = `http://${host}/`;
    const html = `<title>r</title><a href="/a">a</a><a href="/b">b</a>`;
    const fetchedAt = Date.now() - 60_000;
    for (const [i, at] of [fetchedAt, fetchedAt + 1_000].entries()) {
      await h.target.sqs.send(
        new SendMessageBatchCommand({
          QueueUrl: h.target.outputs.ParseQueueUrl,
          Entries: [{ Id: '0', MessageBody: JSON.stringify(parsePageMessage(crawlId, url, html, at)) }],
        }),
      );
      await waitFor(`fetch ${i + 1} counted`, async () =>
        (await onlineRanking(t, crawlId)).summary.pages > i ? true : undefined,
      );
    }
    const online = await onlineRanking(t, crawlId);
    const exact = await exactRankingLocal(t, crawlId);
    expect(exact).toEqual([`${url}a`, `${url}b`].map((u) => ({ url: u, inlinks: 1 })));
    expect(online.ranking).toEqual([`${url}a`, `${url}b`].map((u) => ({ url: u, inlinks: 2 })));
    // Both fetches were stored (the newer replaced the older), and the second one's links are repeats.
    expect(online.summary).toMatchObject({ pages: 2, repeats: 1, overcountBound: 2 });
    expect(compareRankings(online.ranking, exact).overcount).toBeLessThanOrEqual(
      online.summary.overcountBound,
    );
  });

  it('sends a malformed page-links message to the links DLQ alone, and counts its batch-mates once', async () => {
    const host = 'poison.test';
    const crawlId = await crawlOf(host);
    await waitForIdle(h.target);
    const good = pageLinksMessage(crawlId, 'poison', {
      src: `http://${host}/`,
      links: [`http://${host}/x`, `http://${host}/y`],
      repeat: false,
    });
    const from = h.invocations.length;
    await h.target.sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: t.outputs.LinksQueueUrl,
        Entries: [
          { Id: 'good', MessageBody: JSON.stringify(good) },
          { Id: 'not-json', MessageBody: `{not json ${crawlId}` },
          {
            Id: 'bad-link',
            MessageBody: JSON.stringify({
              ...good,
              payload: { ...good.payload, links: ['javascript:alert(1)'] },
            }),
          },
        ],
      }),
    );
    await waitForIdle(h.target);
    const online = await onlineRanking(t, crawlId);
    expect(online.ranking).toEqual([
      { url: `http://${host}/x`, inlinks: 1 },
      { url: `http://${host}/y`, inlinks: 1 },
    ]);
    expect(online.summary).toMatchObject({ pages: 1, repeats: 0 });
    // Handed out once each: nothing was retried for the bad ones' sake.
    expect(recordsHandled(h, 'LinksConsumer', from)).toBe(3);
    const reasons = await waitFor('both bad messages in the links DLQ', async () => {
      const out = await h.target.sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: t.outputs.LinksDlqUrl,
          MaxNumberOfMessages: 10,
          MessageAttributeNames: ['All'],
          VisibilityTimeout: 0,
        }),
      );
      const r = (out.Messages ?? []).map((m) => m.MessageAttributes?.failureReason?.StringValue ?? '');
      return r.length >= 2 ? r : undefined;
    });
    expect(reasons.some((r) => /body is not JSON/.test(r))).toBe(true);
    expect(reasons.some((r) => /payload\.links\.0: must be an absolute http\(s\) URL/.test(r))).toBe(true);
  });

  it('counts a retried ranker batch once, and bounds a message counted again in another batch', async () => {
    // The ranker runs in this process so a fault can hit one write; DynamoDB and S3 are the emulators.
    Object.assign(process.env, h.sandbox.functionEnvironment('LinksConsumer'));
    const { handler } = await import('../../functions/ranker/handler');
    const crawlId = `t-${randomUUID()}`;
    const host = 'retry.test';
    const message = (src: string, links: string[]) =>
      pageLinksMessage(crawlId, 'retry', {
        src: `http://${host}/${src}`,
        links: links.map((l) => `http://${host}/${l}`),
        repeat: false,
      });
    const messages = [message('1', ['x', 'y']), message('2', ['x']), message('3', ['z'])];
    const record = (i: number, receiveCount: number): SQSRecord => ({
      messageId: `${crawlId}-${i}`,
      receiptHandle: `r-${i}`,
      body: JSON.stringify(messages[i]),
      attributes: {
        ApproximateReceiveCount: String(receiveCount),
        SentTimestamp: String(Date.now()),
        SenderId: 'test',
        ApproximateFirstReceiveTimestamp: String(Date.now()),
      },
      messageAttributes: {},
      md5OfBody: '',
      eventSource: 'aws:sqs',
      eventSourceARN: 'arn:aws:sqs:us-east-1:000000000000:links',
      awsRegion: 'us-east-1',
    });
    const context = { getRemainingTimeInMillis: () => 60_000, functionName: 'ranker' } as unknown as Context;
    const ranked = (counts: Record<string, number>) =>
      Object.entries(counts).map(([p, inlinks]) => ({ url: `http://${host}/${p}`, inlinks }));

    // The edge log is written, then the count write fails: the whole batch goes back to the queue.
    const send = DynamoDBDocumentClient.prototype.send;
    let faults = 0;
    const spy = vi.spyOn(DynamoDBDocumentClient.prototype, 'send').mockImplementation(function (
      this: DynamoDBDocumentClient,
      ...args: Parameters<typeof send>
    ) {
      const input = (args[0] as { input?: { Item?: { crawlId?: string } } }).input;
      if (input?.Item?.crawlId === crawlId && faults++ === 0)
        return Promise.reject(new Error('injected: count write lost'));
      return send.apply(this, args) as never;
    });
    try {
      const first = await handler({ Records: [record(0, 1), record(1, 1)] }, context);
      expect(first.batchItemFailures.map((f) => f.itemIdentifier).sort()).toEqual([
        `${crawlId}-0`,
        `${crawlId}-1`,
      ]);
      expect(faults).toBe(1);
    } finally {
      spy.mockRestore();
    }
    // The same batch handed back: its counts land once, under the same batch key.
    expect(await handler({ Records: [record(0, 2), record(1, 2)] }, context)).toEqual({
      batchItemFailures: [],
    });
    let online = await onlineRanking(t, crawlId);
    expect(online.ranking).toEqual(ranked({ x: 2, y: 1 }));
    expect(online.summary).toMatchObject({ pages: 2, edges: 3, repeats: 2, overcountBound: 3 });
    // The invocation's end is lost after it wrote (a timeout): the same batch again rewrites, adds nothing.
    expect(await handler({ Records: [record(1, 3), record(0, 3)] }, context)).toEqual({
      batchItemFailures: [],
    });
    online = await onlineRanking(t, crawlId);
    expect(online.ranking).toEqual(ranked({ x: 2, y: 1 }));

    // The delete of that batch is lost, and SQS hands its messages out again beside a new one: another
    // batch, so they are counted again, and their receive counts put them in the bound.
    expect(await handler({ Records: [record(0, 4), record(1, 4), record(2, 1)] }, context)).toEqual({
      batchItemFailures: [],
    });
    online = await onlineRanking(t, crawlId);
    const exact = await exactRankingLocal(t, crawlId);
    expect(exact).toEqual(ranked({ x: 2, y: 1, z: 1 }));
    expect(online.ranking).toEqual(ranked({ x: 4, y: 2, z: 1 }));
    const diff = compareRankings(online.ranking, exact);
    expect(diff).toMatchObject({ overcount: 3, missing: 0 });
    expect(online.summary).toMatchObject({ pages: 5, edges: 7, repeats: 4, overcountBound: 6 });
    expect(diff.overcount).toBeLessThanOrEqual(online.summary.overcountBound);
  });
});
