import type { Context, SQSEvent, SQSRecord } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { processFifoBatchByGroup, processStandardBatch } from '../../functions/shared/batch';

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
