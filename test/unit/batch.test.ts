import type { Context, SQSEvent, SQSRecord } from 'aws-lambda';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import {
  finishLater,
  poisonToDlq,
  processFifoBatchByGroup,
  processStandardBatch,
} from '../../functions/kit/batch';
import { InvalidMessageError } from '../../functions/kit/errors';
import { logger } from '../../functions/kit/powertools';

// The DLQ send is the only AWS call here; the SDK client is replaced by a recorder (unit tests may mock it).
const { sent } = vi.hoisted(() => ({ sent: [] as Array<Record<string, unknown>> }));
vi.mock('../../functions/kit/clients', () => ({
  sqs: {
    send: async (command: { input: Record<string, unknown> }) => {
      sent.push(command.input);
      return {};
    },
  },
}));

const context = { getRemainingTimeInMillis: () => 60_000 } as unknown as Context;

function record(id: string, group?: string): SQSRecord {
  return {
    messageId: id,
    receiptHandle: id,
    body: id,
    attributes: {
      ApproximateReceiveCount: '1',
      SentTimestamp: '0',
      SenderId: 's',
      ApproximateFirstReceiveTimestamp: '0',
      ...(group ? { MessageGroupId: group } : {}),
    },
    messageAttributes: {},
    md5OfBody: '',
    eventSource: 'aws:sqs',
    eventSourceARN: 'arn:aws:sqs:us-east-1:000000000000:q',
    awsRegion: 'us-east-1',
  };
}

const tick = () => new Promise((r) => setImmediate(r));

// AWS may hand one Lambda batch several records of the same FIFO group (fauxqs hands out one per group per
// receive), so the in-batch ordering rules are proven here on plain handlers.
describe('processFifoBatchByGroup', () => {
  it('keeps order inside a group, reports the failed record and the rest of its group, and finishes other groups', async () => {
    const seen: string[] = [];
    const event: SQSEvent = {
      Records: [
        record('a1', 'A'),
        record('b1', 'B'),
        record('a2', 'A'),
        record('b2', 'B'),
        record('a3', 'A'),
      ],
    };
    const out = await processFifoBatchByGroup(event, context, async (r) => {
      seen.push(r.messageId);
      await tick();
      if (r.messageId === 'a2') throw new Error('boom');
    });
    expect(out.batchItemFailures.map((f) => f.itemIdentifier).sort()).toEqual(['a2', 'a3']);
    expect(seen.filter((id) => id.startsWith('a'))).toEqual(['a1', 'a2']);
    expect(seen.filter((id) => id.startsWith('b'))).toEqual(['b1', 'b2']);
  });

  it('runs different groups concurrently and one group sequentially', async () => {
    const events: string[] = [];
    const event: SQSEvent = { Records: [record('a1', 'A'), record('a2', 'A'), record('b1', 'B')] };
    await processFifoBatchByGroup(event, context, async (r) => {
      events.push(`start ${r.messageId}`);
      await tick();
      await tick();
      events.push(`end ${r.messageId}`);
    });
    expect(events.indexOf('start b1')).toBeLessThan(events.indexOf('end a1'));
    expect(events.indexOf('end a1')).toBeLessThan(events.indexOf('start a2'));
  });
});

describe('processStandardBatch', () => {
  it('reports only the records that threw', async () => {
    const event: SQSEvent = { Records: [record('1'), record('2'), record('3')] };
    const out = await processStandardBatch(event, context, async (r) => {
      if (r.messageId === '2') throw new Error('bad');
    });
    expect(out.batchItemFailures).toEqual([{ itemIdentifier: '2' }]);
  });
});

describe('poisonToDlq', () => {
  beforeEach(() => {
    sent.length = 0;
  });

  it('forwards an invalid message to the DLQ with its reason and ids, and reports it processed', async () => {
    const handler = poisonToDlq('https://dlq', async () => {
      throw new InvalidMessageError('schema validation failed: payload.url: bad');
    });
    const fifo = { ...record('m1', 'host.example'), body: '{"crawlId":"c1","correlationId":"k1"}' };
    await expect(handler(fifo)).resolves.toBe('forwarded-to-dlq');
    expect(sent).toEqual([
      {
        QueueUrl: 'https://dlq',
        MessageBody: fifo.body,
        MessageAttributes: {
          failureReason: { DataType: 'String', StringValue: 'schema validation failed: payload.url: bad' },
          sourceMessageId: { DataType: 'String', StringValue: 'm1' },
          sourceQueueArn: { DataType: 'String', StringValue: fifo.eventSourceARN },
        },
        // A FIFO DLQ needs the group; without it the send fails and the host's group stalls.
        MessageGroupId: 'host.example',
        MessageDeduplicationId: 'm1',
      },
    ]);
  });

  it('forwards every attribute of the message, one named __proto__ included', async () => {
    const handler = poisonToDlq('https://dlq', async () => {
      throw new InvalidMessageError('bad');
    });
    // As Lambda's JSON parse hands them over: "__proto__" is an own property of the attributes.
    const withAttributes = {
      ...record('m3'),
      messageAttributes: JSON.parse(
        '{"__proto__":{"dataType":"String","stringValue":"kept"},"body":{"dataType":"Binary","binaryValue":"AAEC"}}',
      ),
    };
    await handler(withAttributes);
    const attributes = (sent[0]?.MessageAttributes ?? {}) as Record<string, unknown>;
    expect(Object.getPrototypeOf(attributes)).toBe(Object.prototype);
    expect(Object.entries(attributes).filter(([name]) => name === '__proto__')).toEqual([
      ['__proto__', { DataType: 'String', StringValue: 'kept' }],
    ]);
    expect(attributes.body).toEqual({ DataType: 'Binary', BinaryValue: Buffer.from([0, 1, 2]) });
  });

  it('sends no group to a standard DLQ, and cuts a long reason to 1,000 characters', async () => {
    const handler = poisonToDlq('https://dlq', async () => {
      throw new InvalidMessageError('x'.repeat(5_000));
    });
    await handler(record('m2'));
    expect(sent[0]).not.toHaveProperty('MessageGroupId');
    const attributes = sent[0]?.MessageAttributes as Record<string, { StringValue: string }>;
    expect(attributes.failureReason?.StringValue).toHaveLength(1_000);
  });

  it('tells the pipeline of each record it forwarded, once it is on the DLQ, and survives a failing hook', async () => {
    const told: string[] = [];
    const handler = poisonToDlq(
      'https://dlq',
      async () => {
        throw new InvalidMessageError('no body');
      },
      async (r, error) => {
        told.push(`${r.messageId}: ${error.message} after ${sent.length} send`);
        throw new Error('table gone');
      },
    );
    await expect(handler(record('m5'))).resolves.toBe('forwarded-to-dlq');
    expect(told).toEqual(['m5: no body after 1 send']);
    // Any other error is not a forward: the hook is not told.
    const other = poisonToDlq(
      'https://dlq',
      async () => {
        throw new Error('throttled');
      },
      async (r) => void told.push(r.messageId),
    );
    await expect(other(record('m6'))).rejects.toThrow('throttled');
    expect(told).toHaveLength(1);
  });

  it('lets every other error through, so only that record is retried', async () => {
    const handler = poisonToDlq('https://dlq', async () => {
      throw new Error('throttled');
    });
    await expect(handler(record('m3'))).rejects.toThrow('throttled');
    expect(sent).toEqual([]);
    await expect(poisonToDlq('https://dlq', async () => 'ok')(record('m4'))).resolves.toBe('ok');
  });
});

describe('processFifoBatchByGroup around each group', () => {
  it('wraps each message group once', async () => {
    const groups: number[] = [];
    const event: SQSEvent = { Records: [record('a1', 'A'), record('a2', 'A'), record('b1', 'B')] };
    await processFifoBatchByGroup(event, context, async () => undefined, {
      aroundGroup: async (run) => {
        groups.push(1);
        return run();
      },
    });
    expect(groups).toHaveLength(2);
  });
});

describe('records that finish later (finishLater)', () => {
  /** A promise and its resolve/reject, to finish a record's work when the test says. */
  const deferred = () => {
    const d = {} as { promise: Promise<string>; resolve: (v: string) => void; reject: (e: Error) => void };
    d.promise = new Promise<string>((resolve, reject) => Object.assign(d, { resolve, reject }));
    return d;
  };

  it('starts the next record of the group before the earlier one has finished, and waits for both', async () => {
    const work = { a1: deferred(), a2: deferred() };
    const log: string[] = [];
    const event: SQSEvent = { Records: [record('a1', 'A'), record('a2', 'A')] };
    const done = processFifoBatchByGroup(event, context, async (r) => {
      log.push(`start ${r.messageId}`);
      return finishLater(work[r.messageId as 'a1' | 'a2'].promise);
    });
    await tick();
    expect(log).toEqual(['start a1', 'start a2']);
    let settled = false;
    void done.then(() => {
      settled = true;
    });
    work.a2.resolve('ok');
    await tick();
    expect(settled).toBe(false);
    work.a1.resolve('ok');
    expect(await done).toEqual({ batchItemFailures: [] });
  });

  it('fails a record whose work fails and every record after it in the group, with its own error, and no other group', async () => {
    const event: SQSEvent = {
      Records: [
        {
          ...record('a1', 'A'),
          attributes: { ...record('a1', 'A').attributes, ApproximateReceiveCount: '5' },
        },
        {
          ...record('a2', 'A'),
          attributes: { ...record('a2', 'A').attributes, ApproximateReceiveCount: '5' },
        },
        record('a3', 'A'),
        record('b1', 'B'),
      ],
    };
    const told: Array<[string, string]> = [];
    const finished: string[] = [];
    const out = await processFifoBatchByGroup(
      event,
      context,
      async (r) =>
        finishLater(
          (async () => {
            await tick();
            if (r.messageId === 'a2') throw new Error('hand-off refused');
            finished.push(r.messageId);
          })(),
        ),
      {
        maxReceiveCount: 5,
        onLastReceiveFailure: async (r, error) =>
          void told.push([r.messageId, error === undefined ? 'skipped' : (error as Error).message]),
      },
    );
    expect(out.batchItemFailures.map((f) => f.itemIdentifier).sort()).toEqual(['a2', 'a3']);
    expect(told).toEqual([['a2', 'hand-off refused']]);
    // a3's work still ran to its end before the invocation returned.
    expect(finished.sort()).toEqual(['a1', 'a3', 'b1']);
  });

  it("reports a record once when it failed in order and an earlier record's work failed too, and lets no rejection go unhandled", async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const slow = deferred();
      // a1's work finishes only after a2's has long failed: a2's rejection waits unobserved until then.
      setTimeout(() => slow.resolve('ok'), 30);
      const event: SQSEvent = {
        Records: [record('a1', 'A'), record('a2', 'A'), record('a3', 'A'), record('a4', 'A')],
      };
      const told: Array<[string, string]> = [];
      const out = await processFifoBatchByGroup(
        event,
        context,
        async (r) => {
          // a1 waits on slow work; a2's work fails at once, before anything awaits it; a3 fails in order.
          if (r.messageId === 'a1') return finishLater(slow.promise);
          if (r.messageId === 'a2') return finishLater(Promise.reject(new Error('a2 refused')));
          if (r.messageId === 'a3') throw new Error('a3 down');
        },
        {
          maxReceiveCount: 1,
          onLastReceiveFailure: async (r, error) =>
            void told.push([r.messageId, error === undefined ? 'skipped' : (error as Error).message]),
        },
      );
      await tick();
      expect(unhandled).toEqual([]);
      // a2's failure is settled after a1's work, in order, and adds only itself.
      expect(out.batchItemFailures.map((f) => f.itemIdentifier)).toEqual(['a3', 'a4', 'a2']);
      expect(told).toEqual([
        ['a2', 'a2 refused'],
        ['a3', 'a3 down'],
        ['a4', 'skipped'],
      ]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('wraps only the in-order run of the records with aroundRecords, not the wait for their work', async () => {
    const work = deferred();
    const phases: string[] = [];
    const event: SQSEvent = { Records: [record('a1', 'A')] };
    const done = processFifoBatchByGroup(event, context, async () => finishLater(work.promise), {
      aroundGroup: async (run) => {
        phases.push('group in');
        const result = await run();
        phases.push('group out');
        return result;
      },
      aroundRecords: async (run) => {
        const result = await run();
        phases.push('records done');
        return result;
      },
    });
    await tick();
    expect(phases).toEqual(['group in', 'records done']);
    work.resolve('ok');
    await done;
    expect(phases).toEqual(['group in', 'records done', 'group out']);
  });
});

describe('records failed on their last receive', () => {
  const at = (r: SQSRecord, receives: number): SQSRecord => ({
    ...r,
    attributes: { ...r.attributes, ApproximateReceiveCount: String(receives) },
  });

  it('tells the pipeline of each failed record on its last receive, with its error, or none if it was skipped', async () => {
    // a1 fails; a2 and a3 are skipped behind it. a2 is on its 5th receive of 5, a3 on its 4th; b1 succeeds.
    const event: SQSEvent = {
      Records: [
        at(record('a1', 'A'), 5),
        at(record('a2', 'A'), 5),
        at(record('a3', 'A'), 4),
        at(record('b1', 'B'), 5),
      ],
    };
    const told: Array<[string, string]> = [];
    const out = await processFifoBatchByGroup(
      event,
      context,
      async (r) => {
        if (r.messageId === 'a1') throw new Error('down');
      },
      {
        maxReceiveCount: 5,
        onLastReceiveFailure: async (r, error) =>
          void told.push([r.messageId, error === undefined ? 'skipped' : (error as Error).message]),
      },
    );
    expect(out.batchItemFailures.map((f) => f.itemIdentifier)).toEqual(['a1', 'a2', 'a3']);
    // a1 failed itself; a2 was skipped behind it; a3 has a receive left; b1 succeeded.
    expect(told).toEqual([
      ['a1', 'down'],
      ['a2', 'skipped'],
    ]);
  });

  it('tells a standard batch of its failed records on their last receive, with their errors', async () => {
    const event: SQSEvent = { Records: [at(record('s1'), 3), at(record('s2'), 2), at(record('s3'), 3)] };
    const told: Array<[string, string]> = [];
    const out = await processStandardBatch(
      event,
      context,
      async (r) => {
        if (r.messageId !== 's3') throw new Error(`down ${r.messageId}`);
      },
      {
        maxReceiveCount: 3,
        onLastReceiveFailure: async (r, error) => {
          told.push([r.messageId, (error as Error).message]);
          throw new Error('table gone');
        },
      },
    );
    // s1 failed on its last receive; s2 has one left; s3 succeeded. The hook's own failure is only logged.
    expect(out.batchItemFailures.map((f) => f.itemIdentifier).sort()).toEqual(['s1', 's2']);
    expect(told).toEqual([['s1', 'down s1']]);
  });

  it('reads maxReceiveCount from the environment QueueConsumer sets, and survives a failing hook', async () => {
    process.env.MAX_RECEIVE_COUNT = '3';
    try {
      const event: SQSEvent = { Records: [at(record('a1', 'A'), 3), at(record('a2', 'A'), 3)] };
      const told: string[] = [];
      const out = await processFifoBatchByGroup(
        event,
        context,
        async () => {
          throw new Error('down');
        },
        {
          onLastReceiveFailure: async (r) => {
            told.push(r.messageId);
            throw new Error('table gone');
          },
        },
      );
      expect(told).toEqual(['a1', 'a2']);
      expect(out.batchItemFailures).toHaveLength(2);
    } finally {
      delete process.env.MAX_RECEIVE_COUNT;
    }
  });
});

describe('batches where every record fails', () => {
  it('reports every record of a standard batch instead of throwing, and runs them side by side', async () => {
    let running = 0;
    let most = 0;
    const event: SQSEvent = { Records: [record('1'), record('2'), record('3')] };
    const out = await processStandardBatch(event, context, async () => {
      running++;
      most = Math.max(most, running);
      await tick();
      running--;
      throw new Error('down');
    });
    expect(out.batchItemFailures.map((f) => f.itemIdentifier)).toEqual(['1', '2', '3']);
    expect(most).toBe(3);
  });

  it('reports every record of a FIFO batch instead of throwing', async () => {
    const event: SQSEvent = { Records: [record('a1', 'A'), record('b1', 'B')] };
    const out = await processFifoBatchByGroup(event, context, async () => {
      throw new Error('down');
    });
    expect(out.batchItemFailures.map((f) => f.itemIdentifier).sort()).toEqual(['a1', 'b1']);
  });
});

describe('poisonToDlq log lines', () => {
  it('logs a failing record with its ids and receive count, and a forwarded one with its reason', async () => {
    const lines: unknown[][] = [];
    const spy = vi.spyOn(logger, 'error').mockImplementation((...args: unknown[]) => {
      lines.push(args);
    });
    try {
      const body = '{"crawlId":"c9","correlationId":"k9"}';
      const failing = poisonToDlq('https://dlq', async () => {
        throw new Error('throttled');
      });
      await expect(failing({ ...record('m7'), body })).rejects.toThrow('throttled');
      const invalid = poisonToDlq('https://dlq', async () => {
        throw new InvalidMessageError('bad schema');
      });
      await invalid({ ...record('m8'), body });
      expect(lines).toEqual([
        [
          'record failed; it returns to the queue for retry',
          expect.objectContaining({ crawlId: 'c9', correlationId: 'k9', messageId: 'm7', receiveCount: '1' }),
        ],
        [
          'invalid message forwarded to DLQ without retry',
          expect.objectContaining({ crawlId: 'c9', messageId: 'm8', reason: 'bad schema' }),
        ],
      ]);
    } finally {
      spy.mockRestore();
    }
  });
});

describe('the retry delay of failed FIFO records', () => {
  const at = (r: SQSRecord, receives: number): SQSRecord => ({
    ...r,
    attributes: { ...r.attributes, ApproximateReceiveCount: String(receives) },
  });
  /** A recorder for the one call the option makes (unit tests may mock the SDK). */
  function recorder(fail?: Error) {
    const calls: Array<{ QueueUrl: string; Entries: Array<Record<string, unknown>> }> = [];
    const client = {
      send: async (command: { input: (typeof calls)[number] }) => {
        calls.push(command.input);
        if (fail) throw fail;
        return {};
      },
    } as unknown as import('@aws-sdk/client-sqs').SQSClient;
    return { calls, client };
  }

  it("sets each group's failed records to the delay picked for its first failure, and leaves the rest alone", async () => {
    // A: a1 succeeds, a2 fails, a3 is skipped behind it. B: b1 fails, no delay picked. C: c1 on its last receive.
    const event: SQSEvent = {
      Records: [
        record('a1', 'A'),
        record('a2', 'A'),
        record('a3', 'A'),
        record('b1', 'B'),
        at(record('c1', 'C'), 5),
      ],
    };
    const { calls, client } = recorder();
    const asked: Array<[string, string]> = [];
    const out = await processFifoBatchByGroup(
      event,
      context,
      async (r) => {
        if (['a2', 'b1', 'c1'].includes(r.messageId)) throw new Error(`${r.messageId} down`);
      },
      {
        maxReceiveCount: 5,
        retryDelay: {
          queueUrl: 'https://sqs/q.fifo',
          client,
          seconds: (r, error) => {
            asked.push([r.messageId, (error as Error).message]);
            return r.messageId === 'a2' ? 7.4 : undefined;
          },
        },
      },
    );
    expect(out.batchItemFailures.map((f) => f.itemIdentifier)).toEqual(['a2', 'a3', 'b1', 'c1']);
    expect(asked).toEqual([
      ['a2', 'a2 down'],
      ['b1', 'b1 down'],
    ]);
    expect(calls).toEqual([
      {
        QueueUrl: 'https://sqs/q.fifo',
        Entries: [
          { Id: '0', ReceiptHandle: 'a2', VisibilityTimeout: 7 },
          { Id: '1', ReceiptHandle: 'a3', VisibilityTimeout: 7 },
        ],
      },
    ]);
  });

  it('sends at most 10 entries a call, clamps to what SQS allows, and keeps the failures when the call fails', async () => {
    const records = Array.from({ length: 12 }, (_, i) => record(`g${i}`, `G${i}`));
    const { calls, client } = recorder(new Error('AccessDenied'));
    const out = await processFifoBatchByGroup(
      { Records: records },
      context,
      async () => {
        throw new Error('down');
      },
      {
        maxReceiveCount: 5,
        retryDelay: { queueUrl: 'q', client, seconds: (r) => (r.messageId === 'g0' ? -3 : 99_999) },
      },
    );
    expect(out.batchItemFailures).toHaveLength(12);
    expect(calls.map((c) => c.Entries.length)).toEqual([10, 2]);
    expect(calls[0]?.Entries[0]).toMatchObject({ ReceiptHandle: 'g0', VisibilityTimeout: 0 });
    expect(calls[1]?.Entries[1]).toMatchObject({ ReceiptHandle: 'g11', VisibilityTimeout: 43_200 });
  });
});
