import { randomUUID } from 'node:crypto';
import {
  ChangeMessageVisibilityCommand,
  DeleteMessageCommand,
  type Message,
  ReceiveMessageCommand,
  SendMessageCommand,
} from '@aws-sdk/client-sqs';
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CRAWLER_OUTPUTS, type CrawlerOutput } from '../../cli/crawl-api';
import { type EventSourceSpec, toSqsRecord } from '../../sandbox/runner';
import { type Sandbox, startSandbox } from '../../sandbox/sandbox';
import { waitFor } from '../../tooling/queues';
import { parsePageMessage } from './messages';

// The parser runs in this process so a crash can be injected between "links claimed" and "links enqueued".
// Everything it talks to is real: fauxqs for SQS and DynamoDB Local for the claims. Modules that create
// AWS clients are imported only after the environment points them at the emulators.
let sb: Sandbox<CrawlerOutput>;
let handler: (event: SQSEvent, context: Context) => Promise<SQSBatchResponse>;
let faultInjection: {
  beforePayment?: (urls: readonly string[]) => void;
  afterClaim?: (urls: readonly string[]) => void;
};
let staleReads: { inject?: boolean };
let resetKnownLinks: () => void;
let api: typeof import('../../cli/crawl-api');

beforeAll(async () => {
  sb = await startSandbox({ runFunctions: false, outputs: CRAWLER_OUTPUTS });
  Object.assign(process.env, sb.functionEnvironment('ParseQueueConsumer'));
  api = await import('../../cli/crawl-api');
  ({ handler } = await import('../../functions/parser/handler'));
  ({ faultInjection, staleReads, resetKnownLinks } = await import('../../functions/parser/links'));
});
afterAll(async () => {
  await sb?.stop();
});

/** The parse queue as an event source, for turning received messages into the records Lambda passes. */
const parseSource = (): EventSourceSpec => ({
  queueUrl: sb.target.outputs.ParseQueueUrl,
  queueArn: 'arn:aws:sqs:us-east-1:000000000000:parse',
  batchSize: 10,
  maxConcurrency: 2,
  reportBatchItemFailures: true,
});

const context = { getRemainingTimeInMillis: () => 30_000, functionName: 'parser' } as unknown as Context;

async function receiveAll(queueUrl: string): Promise<Message[]> {
  const all: Message[] = [];
  for (;;) {
    const out = await sb.target.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queueUrl,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 1,
        MessageSystemAttributeNames: ['All'],
      }),
    );
    if (!out.Messages?.length) return all;
    for (const m of out.Messages) {
      all.push(m);
      await sb.target.sqs.send(
        new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: m.ReceiptHandle }),
      );
    }
  }
}

describe('crash between claiming links and enqueueing them', () => {
  it('loses no URL: the redelivered message finds its own claims and enqueues them', async () => {
    const { outputs } = sb.target;
    const crawlId = `crash-${randomUUID()}`;
    const page = 'http://site.example/';
    await api.submitCrawl(sb.target, { crawlId, seeds: [page], maxPages: 100, maxDepth: 3 });
    await receiveAll(outputs.FrontierQueueUrl); // the seed; no crawler runs in this test

    const links = ['/a', '/b', '/c'].map((p) => `http://site.example${p}`);
    const html = links.map((l) => `<a href="${l}">x</a>`).join('');
    await sb.target.sqs.send(
      new SendMessageCommand({
        QueueUrl: outputs.ParseQueueUrl,
        MessageBody: JSON.stringify(parsePageMessage(crawlId, page, html)),
      }),
    );
    const receiveParse = () =>
      waitFor('the parse message', async () => {
        const out = await sb.target.sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: outputs.ParseQueueUrl,
            MaxNumberOfMessages: 1,
            VisibilityTimeout: 1,
            MessageSystemAttributeNames: ['All'],
          }),
        );
        return out.Messages?.[0];
      });

    // First delivery: the function "dies" right after writing its claims.
    faultInjection.afterClaim = () => {
      throw new Error('simulated crash after claim');
    };
    const first = await receiveParse();
    const crashed = await handler({ Records: [toSqsRecord(first, parseSource())] }, context);
    expect(crashed.batchItemFailures).toEqual([{ itemIdentifier: first.MessageId }]);
    const claimed = (await api.listUrls(sb.target, crawlId))
      .filter((u) => u.claimedBy === page)
      .map((u) => u.url);
    expect(claimed.sort()).toEqual(links);
    expect(await receiveAll(outputs.FrontierQueueUrl)).toEqual([]);

    // Redelivery: same message, no crash. The claims are its own, so it enqueues them.
    faultInjection.afterClaim = undefined;
    const second = await receiveParse();
    expect(second.MessageId).toBe(first.MessageId);
    const recovered = await handler({ Records: [toSqsRecord(second, parseSource())] }, context);
    expect(recovered.batchItemFailures).toEqual([]);
    const payloads = (await receiveAll(outputs.FrontierQueueUrl)).map(
      (m) => JSON.parse(m.Body ?? '{}').payload,
    );
    expect(payloads.map((p) => p.url).sort()).toEqual(links);
    // Claimed by the attempt that died, so not first sends: the crawler reads their records.
    expect(payloads.map((p) => p.fresh)).toEqual([undefined, undefined, undefined]);

    // A page parsed without a crash sends the links it claimed as first sends.
    const other = 'http://site.example/other';
    const fresh = ['/d', '/e'].map((p) => `http://site.example${p}`);
    await sb.target.sqs.send(
      new SendMessageCommand({
        QueueUrl: outputs.ParseQueueUrl,
        MessageBody: JSON.stringify(
          parsePageMessage(crawlId, other, [...fresh, links[0]].map((l) => `<a href="${l}">x</a>`).join('')),
        ),
      }),
    );
    const third = await receiveParse();
    expect(
      (await handler({ Records: [toSqsRecord(third, parseSource())] }, context)).batchItemFailures,
    ).toEqual([]);
    const sent = (await receiveAll(outputs.FrontierQueueUrl)).map((m) => JSON.parse(m.Body ?? '{}').payload);
    expect(sent.map((p) => [p.url, p.fresh]).sort()).toEqual(fresh.map((u) => [u, true]));
  });

  /** Parse `html` as page `page` once, through a real parse-queue record; returns the handler's failures. */
  async function parseOnce(crawlId: string, page: string, html: string) {
    const { outputs } = sb.target;
    await sb.target.sqs.send(
      new SendMessageCommand({
        QueueUrl: outputs.ParseQueueUrl,
        MessageBody: JSON.stringify(parsePageMessage(crawlId, page, html)),
      }),
    );
    return deliver(page);
  }

  /** Parse `html` as `page` once, the function "dying" at `point`: the record fails, and its hook is cleared. */
  async function parseCrashingAt(
    point: 'afterClaim' | 'beforePayment',
    crawlId: string,
    page: string,
    html: string,
  ) {
    faultInjection[point] = () => {
      throw new Error(`simulated crash at ${point}`);
    };
    try {
      expect(await parseOnce(crawlId, page, html)).toHaveLength(1);
    } finally {
      faultInjection[point] = undefined;
    }
  }

  /** The URLs sent to the frontier since the last look (each message received and deleted). */
  const frontierUrls = async () =>
    (await receiveAll(sb.target.outputs.FrontierQueueUrl)).map(
      (m) => JSON.parse(m.Body ?? '{}').payload.url as string,
    );

  /** Make a received parse message visible again at once. */
  const giveBack = (receiptHandle: string | undefined) =>
    sb.target.sqs.send(
      new ChangeMessageVisibilityCommand({
        QueueUrl: sb.target.outputs.ParseQueueUrl,
        ReceiptHandle: receiptHandle,
        VisibilityTimeout: 0,
      }),
    );

  /** Receive the parse message of `page` (others go back at once), hand it to the parser, delete it if done. */
  async function deliver(page: string) {
    const { outputs } = sb.target;
    const m = await waitFor(`the parse message of ${page}`, async () => {
      const out = await sb.target.sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: outputs.ParseQueueUrl,
          MaxNumberOfMessages: 10,
          VisibilityTimeout: 30,
          MessageSystemAttributeNames: ['All'],
        }),
      );
      let mine: (typeof out.Messages & object)[number] | undefined;
      for (const msg of out.Messages ?? []) {
        if (!mine && JSON.parse(msg.Body ?? '{}').payload?.url === page) mine = msg;
        else await giveBack(msg.ReceiptHandle);
      }
      return mine;
    });
    const result = await handler({ Records: [toSqsRecord(m, parseSource())] }, context);
    // As Lambda does: delete on success; on failure the message comes back (at once, for the test).
    if (result.batchItemFailures.length === 0)
      await sb.target.sqs.send(
        new DeleteMessageCommand({ QueueUrl: outputs.ParseQueueUrl, ReceiptHandle: m.ReceiptHandle }),
      );
    else await giveBack(m.ReceiptHandle);
    return result.batchItemFailures;
  }

  it.each([
    ['read the claim', false],
    ['lost the claim race (its read was stale)', true],
  ])(
    'loses no URL when a page-mate in the same container %s before the claim was sent',
    async (_how, stale) => {
      const { outputs } = sb.target;
      const crawlId = `crash-mate-${stale}-${randomUUID()}`;
      const pageA = 'http://mate.example/a';
      const pageB = 'http://mate.example/b';
      const link = 'http://mate.example/shared';
      await api.submitCrawl(sb.target, { crawlId, seeds: [pageA, pageB], maxPages: 100, maxDepth: 3 });
      await receiveAll(outputs.FrontierQueueUrl);

      await parseCrashingAt('afterClaim', crawlId, pageA, `<a href="${link}">x</a>`);
      // B finds the link claimed by A: not B's to send. This container now knows A claimed it.
      staleReads.inject = stale;
      try {
        expect(await parseOnce(crawlId, pageB, `<a href="${link}">x</a>`)).toEqual([]);
      } finally {
        staleReads.inject = false;
      }
      expect(await receiveAll(outputs.FrontierQueueUrl)).toEqual([]);
      // A's retry in this same container must still send its own claim.
      expect(await deliver(pageA)).toEqual([]);
      const sent = (await receiveAll(outputs.FrontierQueueUrl)).map(
        (m) => JSON.parse(m.Body ?? '{}').payload.url,
      );
      expect(sent).toEqual([link]);
    },
  );

  it('loses no URL when a redelivered page meets a stale read after the crawl ran out of budget', async () => {
    const { outputs } = sb.target;
    const crawlId = `crash-stale-${randomUUID()}`;
    const page = 'http://stale.example/';
    const links = ['/x', '/y'].map((p) => `http://stale.example${p}`);
    // maxPages 3: the seed and two more. Another page spends them while this one is down.
    await api.submitCrawl(sb.target, { crawlId, seeds: [page], maxPages: 3, maxDepth: 3 });
    await receiveAll(outputs.FrontierQueueUrl);

    await parseCrashingAt('afterClaim', crawlId, page, links.map((l) => `<a href="${l}">x</a>`).join(''));
    const other = 'http://stale.example/other';
    const spend = ['/p', '/q', '/r'].map((p) => `<a href="http://stale.example${p}">x</a>`).join('');
    expect(await parseOnce(crawlId, other, spend)).toEqual([]);
    await receiveAll(outputs.FrontierQueueUrl);

    // The retry's claim read comes back stale (as an eventually consistent read may).
    staleReads.inject = true;
    try {
      expect(await deliver(page)).toEqual([]);
    } finally {
      staleReads.inject = false;
    }
    // Each of the page's claimed links was sent or has an outcome: none is left claimed and silent.
    const urls = await api.listUrls(sb.target, crawlId);
    const sent = new Set(
      (await receiveAll(outputs.FrontierQueueUrl)).map((m) => JSON.parse(m.Body ?? '{}').payload.url),
    );
    for (const link of links) {
      const record = urls.find((u) => u.url === link);
      expect(record?.claimedBy).toBe(page);
      expect(sent.has(link) || record?.outcome !== undefined, link).toBe(true);
    }
  });

  it('pays once for links claimed by a page that died before paying for them, and sends them all', async () => {
    const { outputs } = sb.target;
    const crawlId = `crash-pay-${randomUUID()}`;
    const page = 'http://pay.example/';
    const links = ['/a', '/b', '/c'].map((p) => `http://pay.example${p}`);
    await api.submitCrawl(sb.target, { crawlId, seeds: [page], maxPages: 10, maxDepth: 3 });
    await receiveAll(outputs.FrontierQueueUrl);

    const html = links.map((l) => `<a href="${l}">x</a>`).join('');
    await parseCrashingAt('beforePayment', crawlId, page, html);
    // Claimed, not paid for and not sent.
    const claimed = (await api.listUrls(sb.target, crawlId)).filter((u) => u.claimedBy === page);
    expect(claimed.map((u) => u.url).sort()).toEqual(links);
    expect(await api.crawlBudget(sb.target, crawlId)).toEqual({ maxPages: 10, admitted: 1 });
    expect(await receiveAll(outputs.FrontierQueueUrl)).toEqual([]);

    // The retry pays for its own claims, once, and sends them; a third delivery pays nothing more.
    expect(await deliver(page)).toEqual([]);
    expect(await api.crawlBudget(sb.target, crawlId)).toEqual({ maxPages: 10, admitted: 4 });
    expect((await frontierUrls()).sort()).toEqual(links);
    // Parsed again in a container that knows nothing of it: it finds its claims and its admission list,
    // sends the links again (the frontier's dedup id drops them) and pays nothing.
    resetKnownLinks();
    expect(await parseOnce(crawlId, page, html)).toEqual([]);
    expect(await api.crawlBudget(sb.target, crawlId)).toEqual({ maxPages: 10, admitted: 4 });
    expect(await frontierUrls()).toEqual([]);
  });

  it('refuses, with an outcome, the unpaid claims of a page that died while another page spent the budget', async () => {
    const { outputs } = sb.target;
    const crawlId = `crash-unpaid-${randomUUID()}`;
    const page = 'http://unpaid.example/';
    const links = ['/x', '/y', '/z'].map((p) => `http://unpaid.example${p}`);
    // maxPages 3: the seed and two more.
    await api.submitCrawl(sb.target, { crawlId, seeds: [page], maxPages: 3, maxDepth: 3 });
    await receiveAll(outputs.FrontierQueueUrl);

    await parseCrashingAt('beforePayment', crawlId, page, links.map((l) => `<a href="${l}">x</a>`).join(''));
    // Another page finds one of those links (claimed, so not its own) and two new ones, and spends the budget.
    const other = 'http://unpaid.example/other';
    const spent = ['/x', '/p', '/q'].map((p) => `<a href="http://unpaid.example${p}">x</a>`).join('');
    expect(await parseOnce(crawlId, other, spent)).toEqual([]);
    expect((await frontierUrls()).sort()).toEqual(['/p', '/q'].map((p) => `http://unpaid.example${p}`));

    // The retry finds no place left: its claims become budget-exhausted outcomes, and nothing is sent.
    expect(await deliver(page)).toEqual([]);
    expect(await receiveAll(outputs.FrontierQueueUrl)).toEqual([]);
    expect(await api.crawlBudget(sb.target, crawlId)).toEqual({ maxPages: 3, admitted: 3 });
    const urls = await api.listUrls(sb.target, crawlId);
    for (const link of links) {
      const record = urls.find((u) => u.url === link);
      expect(record?.outcome, link).toBe('budget-exhausted');
      expect(record?.claimedBy, link).toBeUndefined();
    }
  });

  it('refuses to submit an existing crawl id again, keeping its budget and seeds and sending nothing', async () => {
    const { outputs } = sb.target;
    const crawlId = `resubmit-${randomUUID()}`;
    await api.submitCrawl(sb.target, {
      crawlId,
      seeds: ['http://resubmit.example/'],
      maxPages: 5,
      maxDepth: 1,
    });
    await receiveAll(outputs.FrontierQueueUrl);
    const before = await api.crawlBudget(sb.target, crawlId);
    await expect(
      api.submitCrawl(sb.target, {
        crawlId,
        seeds: ['http://resubmit.example/other'],
        maxPages: 1_000,
        maxDepth: 9,
      }),
    ).rejects.toThrow(`crawl ${crawlId} already exists; its budget and seeds are kept`);
    expect(await api.crawlBudget(sb.target, crawlId)).toEqual(before);
    expect(await receiveAll(outputs.FrontierQueueUrl)).toEqual([]);
  });
});
