import type { SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { describe, expect, it } from 'vitest';
import { messageBytes, SendBatcher } from '../../functions/kit/send-batcher';

/** A stand-in SQS client that records each SendMessageBatch and fails the entries `refuse` names. */
function fakeSqs(refuse: (body: string) => boolean = () => false) {
  const batches: string[][] = [];
  const client = {
    async send(command: SendMessageBatchCommand) {
      const entries = command.input.Entries ?? [];
      batches.push(entries.map((e) => e.MessageBody ?? ''));
      const failed = entries
        .filter((e) => refuse(e.MessageBody ?? ''))
        .map((e) => ({ Id: e.Id, Code: 'InvalidParameterValue', Message: 'refused', SenderFault: true }));
      return { Successful: [], Failed: failed };
    },
  } as unknown as SQSClient;
  return { client, batches };
}

const tick = () => new Promise((r) => setTimeout(r, 5));

describe('SendBatcher', () => {
  it('sends the messages of participants that reach the send together in one batch', async () => {
    const { client, batches } = fakeSqs();
    const b = new SendBatcher('q', client);
    await Promise.all(['a', 'b', 'c'].map((m) => b.participate(() => b.send(m))));
    expect(batches).toEqual([['a', 'b', 'c']]);
  });

  it('packs the items participants send together into the messages the packing makes, and answers each', async () => {
    // A packing that puts items in messages of at most three, joined by '+'.
    const packing = {
      pack: (items: readonly string[]) =>
        Array.from({ length: Math.ceil(items.length / 3) }, (_, m) => ({
          body: items.slice(m * 3, m * 3 + 3).join('+'),
          items: Array.from({ length: Math.min(3, items.length - m * 3) }, (_, i) => m * 3 + i),
        })),
    };
    const { client, batches } = fakeSqs((body) => body.includes('bad'));
    const b = new SendBatcher<string>('q', client, 50, packing);
    const results = await Promise.allSettled(
      ['a', 'b', 'c', 'd', 'bad'].map((item) => b.participate(() => b.sendItem(item))),
    );
    // Five items, two messages, one request; the refused message fails both of its items, and only them.
    expect(batches).toEqual([['a+b+c', 'd+bad']]);
    expect(results.map((r) => r.status)).toEqual([
      'fulfilled',
      'fulfilled',
      'fulfilled',
      'rejected',
      'rejected',
    ]);
    expect(() => new SendBatcher('q', client).sendItem(undefined as never)).toThrow(/needs a packing/);
  });

  it('packs items once, when the participants are done, however many wait meanwhile', async () => {
    const { client, batches } = fakeSqs();
    let packs = 0;
    const packing = {
      pack: (items: readonly string[]) => {
        packs++;
        return [{ body: items.join('+'), items: items.map((_, i) => i) }];
      },
    };
    const b = new SendBatcher<string>('q', client, 60_000, packing);
    let release: () => void = () => undefined;
    const blocker = b.participate(() => new Promise<void>((r) => (release = r)));
    const sends = Array.from({ length: 12 }, (_, i) => b.participate(() => b.sendItem(`i${i}`)));
    await tick();
    expect(batches).toEqual([]);
    release();
    await Promise.all([blocker, ...sends]);
    expect(batches).toEqual([[Array.from({ length: 12 }, (_, i) => `i${i}`).join('+')]]);
    expect(packs).toBe(1);
  });

  it('holds a batch while another participant is still working, and sends when it finishes', async () => {
    const { client, batches } = fakeSqs();
    const b = new SendBatcher('q', client, 60_000);
    let release: () => void = () => undefined;
    const slow = b.participate(() => new Promise<void>((r) => (release = r)));
    let sent = false;
    const fast = b.participate(() => b.send('fast').then(() => (sent = true)));
    await tick();
    expect(batches).toEqual([]);
    expect(sent).toBe(false);
    release();
    await Promise.all([slow, fast]);
    expect(batches).toEqual([['fast']]);
    expect(sent).toBe(true);
  });

  it("does not count a participant waiting on another's work as working, so that work's batch goes out", async () => {
    const { client, batches } = fakeSqs();
    const b = new SendBatcher('q', client, 60_000);
    const first = b.participate(() => b.send('first'));
    // The second waits for the first's send to finish before it sends its own: with a 60 s limit, only its
    // not counting as working lets the first batch go.
    const second = b.participate(async () => {
      await b.whileWaiting(first);
      return b.send('second');
    });
    await Promise.all([first, second]);
    expect(batches).toEqual([['first'], ['second']]);
  });

  it('lets the batch go when the last working participant starts waiting, and counts it as working again after', async () => {
    const { client, batches } = fakeSqs();
    const b = new SendBatcher('q', client, 60_000);
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    const first = b.participate(() => b.send('first'));
    const second = b.participate(async () => {
      // Still working when the first message is queued; only its wait lets that batch go.
      await tick();
      await b.whileWaiting(first);
      // Working again: a message queued now waits for this participant's own.
      await gate;
      return b.send('second');
    });
    // Well before the 60 s limit, the first batch goes out because the second participant began to wait.
    for (let i = 0; i < 400 && batches.length === 0; i++) await tick();
    expect(batches).toEqual([['first']]);
    await first;
    const third = b.participate(() => b.send('third'));
    await tick();
    expect(batches).toEqual([['first']]);
    release();
    await Promise.all([second, third]);
    expect(batches).toEqual([['first'], ['third', 'second']]);
  });

  it('sends at once when ten are waiting, and splits at 10 entries and at 256 KiB', async () => {
    const { client, batches } = fakeSqs();
    const b = new SendBatcher('q', client, 60_000);
    let release: () => void = () => undefined;
    const blocker = b.participate(() => new Promise<void>((r) => (release = r)));
    const sends = Array.from({ length: 12 }, (_, i) => b.participate(() => b.send(`m${i}`)));
    await tick();
    expect(batches.map((x) => x.length)).toEqual([10]);
    release();
    await Promise.all([blocker, ...sends]);
    expect(batches.map((x) => x.length)).toEqual([10, 2]);

    const big = 'x'.repeat(100 * 1024);
    const { client: c2, batches: b2 } = fakeSqs();
    const s2 = new SendBatcher('q', c2);
    await Promise.all([1, 2, 3].map(() => s2.participate(() => s2.send(big))));
    expect(b2.map((x) => x.length)).toEqual([2, 1]);
  });

  it('counts message attributes in the 256 KiB, a binary value at its raw size, and sends them', async () => {
    const sent: Array<Array<{ body: string; attributes: unknown }>> = [];
    const client = {
      async send(command: SendMessageBatchCommand) {
        sent.push(
          (command.input.Entries ?? []).map((e) => ({
            body: e.MessageBody ?? '',
            attributes: e.MessageAttributes,
          })),
        );
        return { Successful: [], Failed: [] };
      },
    } as unknown as SQSClient;
    const b = new SendBatcher('q', client);
    // 100 KiB each in the attribute, a few bytes of body: two fit in 256 KiB, the third goes next.
    const body = { body: { DataType: 'Binary', BinaryValue: new Uint8Array(100 * 1024) } };
    await Promise.all(['a', 'b', 'c'].map((m) => b.participate(() => b.send(m, body))));
    expect(sent.map((x) => x.map((e) => e.body))).toEqual([['a', 'b'], ['c']]);
    expect(sent[0]?.[0]?.attributes).toBe(body);
  });

  it('sizes a message as SQS does: body, and each attribute name, type and value', () => {
    expect(messageBytes('héllo')).toBe(6);
    expect(
      messageBytes('{}', {
        body: { DataType: 'Binary', BinaryValue: new Uint8Array(10) },
        reason: { DataType: 'String', StringValue: 'é' },
      }),
    ).toBe(2 + (4 + 6 + 10) + (6 + 6 + 2));
  });

  it('rejects only the send whose entry the queue refused', async () => {
    const { client } = fakeSqs((body) => body === 'bad');
    const b = new SendBatcher('q', client);
    const results = await Promise.allSettled(
      ['ok', 'bad', 'fine'].map((m) => b.participate(() => b.send(m))),
    );
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((results[1] as PromiseRejectedResult).reason.message).toContain('InvalidParameterValue');
  });

  it('sends straight away for a caller that is not a participant', async () => {
    const { client, batches } = fakeSqs();
    const b = new SendBatcher('q', client);
    await b.send('alone');
    expect(batches).toEqual([['alone']]);
  });

  it('never holds a hand-off for a slow participant longer than maxWaitMs', async () => {
    const { client, batches } = fakeSqs();
    const b = new SendBatcher('q', client, 20);
    let release: () => void = () => undefined;
    // A participant that stays busy (a slow page) for the whole test.
    const slow = b.participate(() => new Promise<void>((r) => (release = r)));
    const fast = b.participate(() => b.send('fast'));
    await fast;
    expect(batches).toEqual([['fast']]);
    release();
    await slow;
  });

  it('fails a send whose whole batch call failed, and lets the next batch through', async () => {
    let calls = 0;
    const client = {
      async send() {
        calls++;
        if (calls === 1) throw new Error('throttled');
        return { Successful: [], Failed: [] };
      },
    } as unknown as SQSClient;
    const b = new SendBatcher('q', client);
    await expect(b.send('first')).rejects.toThrow('throttled');
    await expect(b.send('second')).resolves.toEqual({ resent: false });
  });

  it('tells each sender of a batch the SDK had to send more than once that its message may be there twice', async () => {
    let attempts = 1;
    const client = {
      async send() {
        return { Successful: [], Failed: [], $metadata: { attempts } };
      },
    } as unknown as SQSClient;
    const b = new SendBatcher('q', client);
    expect(await Promise.all(['a', 'b'].map((m) => b.participate(() => b.send(m))))).toEqual([
      { resent: false },
      { resent: false },
    ]);
    attempts = 2;
    expect(await Promise.all(['c', 'd'].map((m) => b.participate(() => b.send(m))))).toEqual([
      { resent: true },
      { resent: true },
    ]);
  });
});
