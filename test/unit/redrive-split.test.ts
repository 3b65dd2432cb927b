import { describe, expect, it } from 'vitest';
import { bySize } from '../../tooling/queues';

describe("the redrive's split of parked messages into SendMessageBatch calls", () => {
  const entry = (id: string, bodyBytes: number, attributeBytes = 0) => ({
    Id: id,
    MessageBody: 'x'.repeat(bodyBytes),
    ...(attributeBytes
      ? { MessageAttributes: { body: { DataType: 'Binary', BinaryValue: new Uint8Array(attributeBytes) } } }
      : {}),
  });

  it('keeps consecutive messages together up to the limit, attributes counted', () => {
    const parts = bySize([entry('a', 10, 90), entry('b', 50, 0), entry('c', 1, 40), entry('d', 10)], 150);
    // a: 10 + 4 + 6 + 90 = 110; b: 50 (160 > 150, new call); c: 1 + 10 + 40 = 51 (101); d: 10 (111).
    expect(parts.map((p) => p.map((e) => e.Id))).toEqual([['a'], ['b', 'c', 'd']]);
  });

  it('sends a message larger than the limit on its own, and drops none', () => {
    const parts = bySize([entry('a', 10), entry('big', 500), entry('c', 10)], 100);
    expect(parts.map((p) => p.map((e) => e.Id))).toEqual([['a'], ['big'], ['c']]);
    expect(bySize([], 100)).toEqual([]);
  });
});
