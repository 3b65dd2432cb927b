import { PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it, vi } from 'vitest';
import { type CrawlerTarget, recordTtlSeconds, submitCrawl } from '../../cli/crawl-api';

// The crawl and seed records the CLI writes live as long as the stage says (RecordTtlSeconds output), not a
// fixed week. The SDK is mocked: what is checked is what submitCrawl asks DynamoDB to write.
describe('the TTL of the records submitCrawl writes', () => {
  it('comes from the stack’s RecordTtlSeconds output, 7 days when a stack predates it', () => {
    expect(recordTtlSeconds({ RecordTtlSeconds: '2592000' })).toBe(2_592_000);
    expect(recordTtlSeconds({})).toBe(604_800);
    expect(recordTtlSeconds({ RecordTtlSeconds: 'soon' })).toBe(604_800);
  });

  it('is the stage’s on the crawl record and on every seed record', async () => {
    const ddbSend = vi.fn(async (_command: unknown) => ({}));
    const sqsSend = vi.fn(async () => ({ Successful: [{ Id: '0' }], Failed: [] }));
    const target = {
      name: 'test',
      outputs: {
        FrontierQueueUrl: 'q.fifo',
        CrawlsTableName: 'crawls',
        UrlsTableName: 'urls',
        RecordTtlSeconds: '2592000',
      },
      ddb: { send: ddbSend },
      sqs: { send: sqsSend },
    } as unknown as CrawlerTarget;
    const now = Math.floor(Date.now() / 1000);
    await submitCrawl(target, { seeds: ['http://a.example/'], maxPages: 5, maxDepth: 1 });
    const put = ddbSend.mock.calls.map(([c]) => c).find((c) => c instanceof PutCommand) as PutCommand;
    const seed = ddbSend.mock.calls.map(([c]) => c).find((c) => c instanceof UpdateCommand) as UpdateCommand;
    const expires = Number(put.input.Item?.expiresAt);
    expect(expires - now).toBeGreaterThanOrEqual(2_592_000);
    expect(expires - now).toBeLessThan(2_592_000 + 60);
    const seedExpires = Number(seed.input.ExpressionAttributeValues?.[':e']);
    expect(seedExpires - now).toBeGreaterThanOrEqual(2_592_000);
    expect(seedExpires - now).toBeLessThan(2_592_000 + 60);
  });
});
