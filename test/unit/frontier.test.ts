import { randomBytes } from 'node:crypto';
import { brotliCompressSync } from 'node:zlib';
import type { SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { describe, expect, it } from 'vitest';
import { decompressBody, planHandOff, SQS_MAX_MESSAGE_BYTES } from '../../functions/crawl/body';
import { frontierMessage, requeueFrontier, sendToFrontier } from '../../functions/crawl/frontier';
import { urlHash } from '../../functions/crawl/url';
import { InvalidMessageError, RetryableError } from '../../functions/kit/errors';

type Entry = NonNullable<SendMessageBatchCommand['input']['Entries']>[number];

/** Records every SendMessageBatch; `refuse(entry, call)` fails an entry on a given call. */
function fakeSqs(refuse: (e: Entry, call: number) => boolean = () => false) {
  const calls: Entry[][] = [];
  const client = {
    async send(command: SendMessageBatchCommand) {
      const entries = command.input.Entries ?? [];
      calls.push(entries);
      const n = calls.length;
      return {
        Successful: entries.filter((e) => !refuse(e, n)).map((e) => ({ Id: e.Id })),
        Failed: entries
          .filter((e) => refuse(e, n))
          .map((e) => ({ Id: e.Id, Code: 'ThrottlingException', SenderFault: false })),
      };
    },
  } as unknown as SQSClient;
  return { client, calls };
}

describe('sendToFrontier', () => {
  const items = Array.from({ length: 25 }, (_, i) => ({
    url: `http://h${i % 3}.example:8080/p${i}`,
    depth: 2,
  }));

  it('groups by host, dedups by hash(crawlId, URL), and sends in batches of 10', async () => {
    const { client, calls } = fakeSqs();
    await expect(sendToFrontier('q', 'c1', 'corr', items, client)).resolves.toBe(25);
    expect(calls.map((c) => c.length)).toEqual([10, 10, 5]);
    for (const entry of calls.flat()) {
      const body = JSON.parse(entry.MessageBody ?? '{}');
      expect(entry.MessageGroupId).toBe(new URL(body.payload.url).host);
      expect(entry.MessageDeduplicationId).toBe(urlHash('c1', body.payload.url));
      expect(body).toMatchObject({ type: 'frontier.url', crawlId: 'c1', correlationId: 'corr' });
    }
  });

  it('resends an entry refused once, and succeeds', async () => {
    const { client, calls } = fakeSqs((e, call) => call === 1 && e.Id === '3');
    await expect(sendToFrontier('q', 'c1', 'corr', items.slice(0, 5), client)).resolves.toBe(5);
    expect(calls.map((c) => c.map((e) => e.Id))).toEqual([['0', '1', '2', '3', '4'], ['3']]);
  });

  it('rejects with a retryable error when SQS keeps refusing an entry, so the record is retried, never dropped', async () => {
    const { client } = fakeSqs((e) => e.Id === '1');
    const sending = sendToFrontier('q', 'c1', 'corr', items.slice(0, 3), client);
    await expect(sending).rejects.toBeInstanceOf(RetryableError);
    await expect(sending).rejects.toThrow('frontier rejected 1 of 3 URLs');
  });
});

describe("a URL's first send", () => {
  it('is marked only where the sender says so, and a URL sent again is never marked', async () => {
    const plain = frontierMessage('c1', 'corr', { url: 'http://a.example/', depth: 1 });
    expect(plain.payload).not.toHaveProperty('fresh');
    const first = frontierMessage('c1', 'corr', { url: 'http://a.example/', depth: 1, fresh: true });
    expect(first.payload).toMatchObject({ url: 'http://a.example/', fresh: true });
    expect(
      frontierMessage('c1', 'corr', { url: 'http://a.example/', depth: 1, fresh: false }).payload,
    ).not.toHaveProperty('fresh');
    const sent: string[] = [];
    const client = {
      async send(command: { input: { MessageBody?: string } }) {
        sent.push(command.input.MessageBody ?? '');
        return {};
      },
    } as unknown as SQSClient;
    await requeueFrontier('q', first, 'http://a.example/', 2, client);
    expect(JSON.parse(sent[0] ?? '{}').payload).toEqual({ url: 'http://a.example/', depth: 1, attempts: 2 });
  });
});

describe('planHandOff', () => {
  it('keeps a body in the message under the threshold and round-trips it', async () => {
    const body = Buffer.from('<p>small</p>');
    const plan = planHandOff(body, 192 * 1024);
    expect(plan.kind).toBe('attribute');
    expect(decompressBody(plan.compressed, 1024 * 1024)).toEqual(body);
  });

  it('compares the threshold with the compressed bytes themselves, not their base64', async () => {
    const body = randomBytes(3000);
    const size = planHandOff(body, SQS_MAX_MESSAGE_BYTES).compressed.length;
    expect(planHandOff(body, size).kind).toBe('attribute');
    expect(planHandOff(body, size - 1).kind).toBe('s3');
  });

  it('sends a body through S3 when its envelope would pass SQS’s 1 MiB, whatever the configured threshold', async () => {
    const incompressible = randomBytes(SQS_MAX_MESSAGE_BYTES - 8 * 1024);
    expect(planHandOff(incompressible, 2 * SQS_MAX_MESSAGE_BYTES).kind).toBe('s3');
    expect(planHandOff(randomBytes(1024), 100).kind).toBe('s3');
  });
});

describe('decompressBody', () => {
  it('returns a body of exactly the limit, and refuses one byte more as an invalid message', () => {
    const body = randomBytes(4096);
    const { compressed } = planHandOff(body, SQS_MAX_MESSAGE_BYTES);
    expect(decompressBody(compressed, 4096)).toEqual(body);
    expect(() => decompressBody(compressed, 4095)).toThrow(InvalidMessageError);
    expect(() => decompressBody(compressed, 4095)).toThrow('page body decodes past 4095 bytes');
  });

  it('refuses a decompression bomb (a few bytes that decode to 64 MiB) as an invalid message', () => {
    const bomb = brotliCompressSync(Buffer.alloc(64 * 1024 * 1024));
    expect(bomb.length).toBeLessThan(1024);
    expect(() => decompressBody(bomb, 2 * 1024 * 1024)).toThrow(InvalidMessageError);
  });

  it('refuses bytes that are not Brotli, and an empty body, as invalid messages', () => {
    expect(() => decompressBody(Buffer.from('<html>not compressed</html>'), 1024)).toThrow(
      /page body is not valid Brotli/,
    );
    expect(() => decompressBody(Buffer.alloc(0), 1024)).toThrow(InvalidMessageError);
  });
});
