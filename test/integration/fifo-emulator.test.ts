import {
  ChangeMessageVisibilityBatchCommand,
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  type Message,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClients } from '../../functions/kit/clients';
import { type Emulators, LOCAL_CREDENTIALS, LOCAL_REGION, startEmulators } from '../../sandbox/emulators';

// The sandbox's SQS must batch FIFO groups as AWS does (patches/fauxqs+1.9.2.patch): a receive returns as
// many messages of one group as it can, in order, and the group stays locked while any of them is in flight.
// And its long polls answer as SQS's do: with a message, or empty once their wait time is over.
let emulators: Emulators;
let sqs: SQSClient;
beforeAll(async () => {
  emulators = await startEmulators();
  ({ sqs } = createClients({
    region: LOCAL_REGION,
    credentials: LOCAL_CREDENTIALS,
    endpoints: { sqs: emulators.sqsEndpoint },
  }));
});
afterAll(async () => {
  sqs?.destroy();
  await emulators?.stop();
});

async function fifoQueue(name: string): Promise<string> {
  const { QueueUrl } = await sqs.send(
    new CreateQueueCommand({
      QueueName: `${name}.fifo`,
      Attributes: { FifoQueue: 'true', VisibilityTimeout: '60' },
    }),
  );
  return QueueUrl as string;
}

async function send(queueUrl: string, group: string, bodies: string[]): Promise<void> {
  for (let i = 0; i < bodies.length; i += 10)
    await sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: queueUrl,
        Entries: bodies.slice(i, i + 10).map((body, n) => ({
          Id: String(n),
          MessageBody: body,
          MessageGroupId: group,
          MessageDeduplicationId: `${group}-${body}`,
        })),
      }),
    );
}

const receive = async (queueUrl: string): Promise<Message[]> =>
  (await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10 }))).Messages ?? [];
const bodies = (ms: Message[]) => ms.map((m) => m.Body);
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => `m${from + i}`);

describe('FIFO receives in the sandbox, as on AWS', () => {
  it('returns 10 messages of one group in order, and nothing more of it until they are deleted', async () => {
    const q = await fifoQueue('one-group');
    await send(q, 'g', range(0, 20));
    const first = await receive(q);
    expect(bodies(first)).toEqual(range(0, 10));
    expect(await receive(q)).toEqual([]);
    await sqs.send(
      new DeleteMessageBatchCommand({
        QueueUrl: q,
        Entries: first.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle })),
      }),
    );
    expect(bodies(await receive(q))).toEqual(range(10, 20));
  });

  it('keeps send order when part of a batch comes back (a partial batch failure)', async () => {
    const q = await fifoQueue('partial');
    await send(q, 'g', range(0, 12));
    const batch = await receive(q);
    expect(bodies(batch)).toEqual(range(0, 10));
    // m0–m4 succeed; m5–m9 are reported failed and made visible again, last one first.
    await sqs.send(
      new DeleteMessageBatchCommand({
        QueueUrl: q,
        Entries: batch.slice(0, 5).map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle })),
      }),
    );
    expect(await receive(q)).toEqual([]);
    await sqs.send(
      new ChangeMessageVisibilityBatchCommand({
        QueueUrl: q,
        Entries: batch
          .slice(5)
          .reverse()
          .map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 0 })),
      }),
    );
    expect(bodies(await receive(q))).toEqual(range(5, 12));
  });

  it('fills a receive from the next group once one group is exhausted', async () => {
    const q = await fifoQueue('two-groups');
    await send(q, 'a', ['a0', 'a1', 'a2']);
    await send(q, 'b', ['b0', 'b1', 'b2', 'b3', 'b4', 'b5', 'b6', 'b7', 'b8', 'b9']);
    expect(bodies(await receive(q))).toEqual(['a0', 'a1', 'a2', 'b0', 'b1', 'b2', 'b3', 'b4', 'b5', 'b6']);
    expect(await receive(q)).toEqual([]);
  });
});

describe('long polls, as SQS answers them', () => {
  it('a long poll that another receive beat to the message waits on for the rest of its wait time', async () => {
    const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: `polls-${Date.now()}` }));
    const poll = async () => {
      const started = Date.now();
      const out = await sqs.send(
        new ReceiveMessageCommand({ QueueUrl, WaitTimeSeconds: 3, MaxNumberOfMessages: 10 }),
      );
      return { messages: out.Messages ?? [], ms: Date.now() - started };
    };
    const polls = [poll(), poll(), poll()];
    await new Promise((r) => setTimeout(r, 300));
    await sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: 'one' }));
    const results = await Promise.all(polls);
    // One poll takes the message; the others were woken by it too, and must not answer empty before
    // their 3 s are over (each such answer is a billed receive on AWS that the sandbox would invent).
    expect(results.map((r) => r.messages.length).sort()).toEqual([0, 0, 1]);
    for (const empty of results.filter((r) => r.messages.length === 0))
      expect(empty.ms).toBeGreaterThanOrEqual(2_900);
  });
});
