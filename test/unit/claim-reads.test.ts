import type { BatchGetCommand } from '@aws-sdk/lib-dynamodb';
import { beforeEach, describe, expect, it, vi } from 'vitest';

/** The BatchGetItem requests made, and the items the fake table holds (claimedBy by URL). */
const requests: Array<{ keys: Array<{ crawlId: string; url: string }>; consistent: boolean }> = [];
const table = new Map<string, string>();
let fail = false;

vi.mock('../../functions/kit/clients', () => ({
  ddb: {
    send: async (command: BatchGetCommand) => {
      const [[name, request]] = Object.entries(command.input.RequestItems ?? {}) as [
        [string, { Keys: Array<{ crawlId: string; url: string }>; ConsistentRead?: boolean }],
      ];
      requests.push({ keys: request.Keys, consistent: request.ConsistentRead === true });
      if (fail) throw new Error('throttled');
      const items = request.Keys.filter((k) => table.has(k.url)).map((k) => ({
        ...k,
        claimedBy: table.get(k.url),
      }));
      return { Responses: { [name]: items } };
    },
  },
}));

const { readClaimOwners } = await import('../../functions/crawl/url-record');

describe('readClaimOwners: the claim reads of pages parsed side by side', () => {
  beforeEach(() => {
    requests.length = 0;
    table.clear();
    fail = false;
  });

  it('go out as one BatchGetItem of distinct keys, and each page gets its own answer', async () => {
    table.set('http://a/1', 'http://a/');
    table.set('http://a/3', '');
    const [p1, p2, p3] = await Promise.all([
      readClaimOwners('urls', 'c1', ['http://a/1', 'http://a/2'], false),
      readClaimOwners('urls', 'c1', ['http://a/2', 'http://a/3'], false),
      readClaimOwners('urls', 'c1', [], false),
    ]);
    expect(requests).toHaveLength(1);
    expect(requests[0]?.keys.map((k) => k.url).sort()).toEqual(['http://a/1', 'http://a/2', 'http://a/3']);
    expect([...(p1 ?? [])]).toEqual([['http://a/1', 'http://a/']]);
    expect([...(p2 ?? [])]).toEqual([['http://a/3', '']]);
    expect(p3?.size).toBe(0);
  });

  it('keeps consistent reads apart from eventually consistent ones, and never answers from a cache', async () => {
    await Promise.all([
      readClaimOwners('urls', 'c1', ['http://a/1'], true),
      readClaimOwners('urls', 'c1', ['http://a/2'], false),
    ]);
    expect(requests.map((r) => r.consistent).sort()).toEqual([false, true]);
    table.set('http://a/1', 'http://a/');
    expect(await readClaimOwners('urls', 'c1', ['http://a/1'], true)).toEqual(
      new Map([['http://a/1', 'http://a/']]),
    );
    expect(requests).toHaveLength(3);
  });

  it('splits at 100 distinct keys', async () => {
    const urls = Array.from({ length: 150 }, (_, i) => `http://a/${i}`);
    await readClaimOwners('urls', 'c1', urls, false);
    expect(requests.map((r) => r.keys.length)).toEqual([100, 50]);
  });

  it('fails every page of a read that failed, so each is retried', async () => {
    fail = true;
    const reads = [
      readClaimOwners('urls', 'c1', ['http://a/1'], false),
      readClaimOwners('urls', 'c1', ['http://a/2'], false),
    ];
    for (const read of reads) await expect(read).rejects.toThrow('throttled');
  });
});
