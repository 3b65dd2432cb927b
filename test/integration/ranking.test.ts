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

  it('sends a malformed page-links message to the links DLQ alone, and counts its batch-mates once', async () => {
    const host = 'poison.test';
    const crawlId = await crawlOf(host);
    await waitForIdle(h.target);
    const good = pageLinksMessage(crawlId, 'poison', {
      src: `http://${host}/`,
      links: [`http://${host}/x`, `http://${host}/y`],
      claimed: [],
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

  it('bounds what a retried ranker batch counts twice: a lost summary write sends the batch back', async () => {
    // The ranker runs in this process so a fault can hit one write; DynamoDB and S3 are the emulators.
    Object.assign(process.env, h.sandbox.functionEnvironment('LinksConsumer'));
    const { handler } = await import('../../functions/ranker/handler');
    const crawlId = `t-${randomUUID()}`;
    const host = 'retry.test';
    const messages = [
      pageLinksMessage(crawlId, 'retry', {
        src: `http://${host}/1`,
        links: [`http://${host}/x`, `http://${host}/y`],
        claimed: [],
        repeat: false,
      }),
      pageLinksMessage(crawlId, 'retry', {
        src: `http://${host}/2`,
        links: [`http://${host}/x`],
        claimed: [],
        repeat: false,
      }),
    ];
    const records = (receiveCount: number): SQSRecord[] =>
      messages.map((m, i) => ({
        messageId: `${crawlId}-${i}`,
        receiptHandle: `r-${i}`,
        body: JSON.stringify(m),
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
      }));
    const context = { getRemainingTimeInMillis: () => 60_000, functionName: 'ranker' } as unknown as Context;

    // The counts are written, then the summary write fails: the whole batch goes back to the queue.
    const send = DynamoDBDocumentClient.prototype.send;
    let faults = 0;
    const spy = vi.spyOn(DynamoDBDocumentClient.prototype, 'send').mockImplementation(function (
      this: DynamoDBDocumentClient,
      ...args: Parameters<typeof send>
    ) {
      const input = (args[0] as { input?: { Key?: { url?: string; crawlId?: string } } }).input;
      if (input?.Key?.crawlId === crawlId && input.Key.url === '#summary' && faults++ === 0)
        return Promise.reject(new Error('injected: summary write lost'));
      return send.apply(this, args) as never;
    });
    try {
      const first = await handler({ Records: records(1) }, context);
      expect(first.batchItemFailures.map((f) => f.itemIdentifier).sort()).toEqual(
        messages.map((_, i) => `${crawlId}-${i}`),
      );
      expect(faults).toBe(1);
      // The redelivery: received a second time, counted again, and the summary says by how much at most.
      expect(await handler({ Records: records(2) }, context)).toEqual({ batchItemFailures: [] });
    } finally {
      spy.mockRestore();
    }
    const online = await onlineRanking(t, crawlId);
    const exact = await exactRankingLocal(t, crawlId);
    expect(exact).toEqual([
      { url: `http://${host}/x`, inlinks: 2 },
      { url: `http://${host}/y`, inlinks: 1 },
    ]);
    expect(online.ranking).toEqual([
      { url: `http://${host}/x`, inlinks: 4 },
      { url: `http://${host}/y`, inlinks: 2 },
    ]);
    expect(online.summary).toMatchObject({ pages: 2, edges: 3, repeats: 2, overcountBound: 3 });
    expect(compareRankings(online.ranking, exact).overcount).toBeLessThanOrEqual(
      online.summary.overcountBound,
    );
  });
});
