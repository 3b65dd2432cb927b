import { randomUUID } from 'node:crypto';
import {
  DeleteMessageCommand,
  type Message,
  ReceiveMessageCommand,
  SendMessageCommand,
} from '@aws-sdk/client-sqs';
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toSqsRecord } from '../../sandbox/runner';
import { type Sandbox, startSandbox } from '../../sandbox/sandbox';
import { parsePageMessage } from './messages';

// The parser runs in this process so a crash can be injected between "links claimed" and "links enqueued".
// Everything it talks to is real: fauxqs for SQS and DynamoDB Local for the claims. Modules that create
// AWS clients are imported only after the environment points them at the emulators.
let sb: Sandbox;
let handler: (event: SQSEvent, context: Context) => Promise<SQSBatchResponse>;
let faultInjection: { afterClaim?: (urls: readonly string[]) => void };
let api: typeof import('../../cli/crawl-api');

beforeAll(async () => {
  sb = await startSandbox({ runFunctions: false });
  Object.assign(process.env, sb.functionEnvironment('Parser'));
  api = await import('../../cli/crawl-api');
  ({ handler } = await import('../../functions/parser/handler'));
  ({ faultInjection } = await import('../../functions/parser/links'));
});
afterAll(async () => {
  await sb?.stop();
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
    const source = {
      queueUrl: outputs.ParseQueueUrl,
      queueArn: 'arn:aws:sqs:us-east-1:000000000000:parse',
      batchSize: 10,
      maxConcurrency: 2,
      reportBatchItemFailures: true,
    };
    const receiveParse = () =>
      api.waitFor('the parse message', async () => {
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
    const crashed = await handler({ Records: [toSqsRecord(first, source)] }, context);
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
    const recovered = await handler({ Records: [toSqsRecord(second, source)] }, context);
    expect(recovered.batchItemFailures).toEqual([]);
    const enqueued = (await receiveAll(outputs.FrontierQueueUrl)).map(
      (m) => JSON.parse(m.Body ?? '{}').payload.url,
    );
    expect(enqueued.sort()).toEqual(links);
  });
});
