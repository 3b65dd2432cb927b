import { randomUUID } from 'node:crypto';
import { brotliCompressSync } from 'node:zlib';
import {
  DeleteMessageCommand,
  type Message,
  PurgeQueueCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
} from '@aws-sdk/client-sqs';
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CRAWLER_OUTPUTS, type CrawlerOutput } from '../../cli/crawl-api';
import type { ParseMessage } from '../../functions/crawl/schemas';
import { type EventSourceSpec, toSqsRecord } from '../../sandbox/runner';
import { type Sandbox, startSandbox } from '../../sandbox/sandbox';
import { emulatorAddresses, guardConnections } from './connections';

// The parser's own handler, in this process, on real parse-queue records: pages built to blow its time or
// memory, or to poison its writes. Each must be stored (or get an outcome) without failing its batch-mates.

let sb: Sandbox<CrawlerOutput>;
let handler: (event: SQSEvent, context: Context) => Promise<SQSBatchResponse>;
let api: typeof import('../../cli/crawl-api');
let guard: ReturnType<typeof guardConnections>;
const HOST = 'site.example';

beforeAll(async () => {
  sb = await startSandbox({ runFunctions: false, outputs: CRAWLER_OUTPUTS });
  const env = sb.functionEnvironment('ParseQueueConsumer');
  const allowed = emulatorAddresses(env);
  guard = guardConnections(() => allowed);
  Object.assign(process.env, env, { POWERTOOLS_LOG_LEVEL: 'SILENT', POWERTOOLS_METRICS_DISABLED: 'true' });
  api = await import('../../cli/crawl-api');
  ({ handler } = await import('../../functions/parser/handler'));
}, 180_000);

afterAll(async () => {
  guard?.restore();
  await sb?.stop();
});

const message = (
  crawlId: string,
  path: string,
  html: string | Buffer,
  body?: ParseMessage['payload']['body'],
): ParseMessage => ({
  type: 'parse.page',
  version: 1,
  crawlId,
  correlationId: 'adv',
  sentAt: new Date().toISOString(),
  payload: {
    url: `http://${HOST}${path}`,
    finalUrl: `http://${HOST}${path}`,
    depth: 0,
    httpStatus: 200,
    contentType: 'text/html',
    fetchedAt: Date.now(),
    body: body ?? {
      kind: 'inline',
      encoding: 'br',
      data: brotliCompressSync(Buffer.from(html)).toString('base64'),
    },
  },
});

const PAGES: Array<[path: string, html: string | Buffer]> = [
  ['/deep', `<title>Deep</title><a href="/from-deep">x</a>${'<b>'.repeat(650_000)}<a href="/never">y</a>`],
  ['/long-link', `<a href="/${'x'.repeat(1_500)}">long</a><a href="/after-long">ok</a>`],
  ['/flood', `${Array.from({ length: 20_000 }, (_, i) => `<a href="/f${i}">${i}</a>`).join('')}`],
  ['/tables', `${'<table><tr><td>'.repeat(60_000)}<a href="/in-tables">x</a>`],
  [
    '/attrs',
    `<a ${Array.from({ length: 50_000 }, (_, i) => `a${i}="${i}"`).join(' ')} href="/attrs-ok">x</a>`,
  ],
  ['/comment', `<!--${'-'.repeat(1_000_000)}<a href="/commented">--><a href="/after-comment">x</a>`],
  ['/entities', `<title>${'&#x1F600;'.repeat(200_000)}</title><a href="/ent">x</a>`],
  ['/binary', Buffer.from(Array.from({ length: 500_000 }, (_, i) => (i * 7919) % 256))],
  ['/utf16', Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('<a href="/u16">x</a>', 'utf16le')])],
  ['/bad-base', `<base href="javascript:alert(1)"><a href="/b">x</a><a href="http://[::1">bad</a>`],
  [
    '/schemes',
    '<a href="file:///etc/passwd">f</a><a href="gopher://x/">g</a><a href="//169.254.169.254/">m</a><a href="/s">ok</a>',
  ],
];

describe('the parser handler against hostile pages (isolated)', () => {
  it('stores every hostile page, keeps its sane links, and fails no record', async () => {
    const crawlId = `advp-${randomUUID()}`;
    await api.submitCrawl(sb.target, { crawlId, seeds: [`http://${HOST}/`], maxPages: 100_000, maxDepth: 5 });
    const { outputs } = sb.target;
    await sb.target.sqs.send(new PurgeQueueCommand({ QueueUrl: outputs.FrontierQueueUrl }));
    for (const [path, html] of PAGES)
      await sb.target.sqs.send(
        new SendMessageCommand({
          QueueUrl: outputs.ParseQueueUrl,
          MessageBody: JSON.stringify(message(crawlId, path, html)),
        }),
      );
    // A claim check whose S3 object is gone: an outcome, not a retry loop.
    await sb.target.sqs.send(
      new SendMessageCommand({
        QueueUrl: outputs.ParseQueueUrl,
        MessageBody: JSON.stringify(
          message(crawlId, '/gone', '', {
            kind: 's3',
            encoding: 'br',
            bucket: outputs.BodiesBucketName,
            key: 'bodies/missing.br',
          }),
        ),
      }),
    );

    const source: EventSourceSpec = {
      queueUrl: outputs.ParseQueueUrl,
      queueArn: 'arn:aws:sqs:us-east-1:000000000000:parse',
      batchSize: 10,
      maxConcurrency: 2,
      reportBatchItemFailures: true,
    };
    const expected = PAGES.length + 1;
    const received: Message[] = [];
    for (let i = 0; i < 30 && received.length < expected; i++) {
      const out = await sb.target.sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: outputs.ParseQueueUrl,
          MaxNumberOfMessages: 10,
          WaitTimeSeconds: 1,
          MessageSystemAttributeNames: ['All'],
          VisibilityTimeout: 600,
        }),
      );
      received.push(...(out.Messages ?? []));
    }
    expect(received).toHaveLength(expected);
    const context = { getRemainingTimeInMillis: () => 30_000, functionName: 'parser' } as unknown as Context;
    for (let i = 0; i < received.length; i += 10) {
      const batch = received.slice(i, i + 10);
      const response = await handler({ Records: batch.map((m) => toSqsRecord(m, source)) }, context);
      expect(response.batchItemFailures).toEqual([]);
      for (const m of batch)
        await sb.target.sqs.send(
          new DeleteMessageCommand({ QueueUrl: outputs.ParseQueueUrl, ReceiptHandle: m.ReceiptHandle }),
        );
    }

    const pages = await api.listPages(sb.target, crawlId);
    const byPath = new Map(pages.map((p) => [new URL(String(p.url)).pathname, p]));
    for (const [path] of PAGES) expect(byPath.has(path), path).toBe(true);
    expect(byPath.get('/deep')?.parseCut).toBe('depth');
    expect(byPath.get('/tables')?.parseCut).toBe('depth');
    const urls = await api.listUrls(sb.target, crawlId);
    const known = new Set(urls.map((u) => new URL(String(u.url)).pathname));
    for (const path of [
      '/from-deep',
      '/after-long',
      '/attrs-ok',
      '/after-comment',
      '/ent',
      '/s',
      '/f0',
      '/f499',
    ])
      expect(known.has(path), path).toBe(true);
    for (const path of ['/never', '/in-tables', '/commented', '/f500'])
      expect(known.has(path), path).toBe(false);
    expect(urls.find((u) => String(u.url).endsWith('/gone'))?.outcome).toBe('body-missing');
    expect(guard.forbidden()).toEqual([]);
  }, 240_000);
});
