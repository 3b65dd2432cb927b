import { randomUUID } from 'node:crypto';
import {
  ChangeMessageVisibilityCommand,
  DeleteMessageCommand,
  type Message,
  PurgeQueueCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
} from '@aws-sdk/client-sqs';
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CRAWLER_OUTPUTS, type CrawlerOutput } from '../../cli/crawl-api';
import { canonicalizeUrl } from '../../functions/crawl/url';
import { type EventSourceSpec, toSqsRecord } from '../../sandbox/runner';
import { type Sandbox, startSandbox } from '../../sandbox/sandbox';
import { holdLease } from '../integration/leases';
import canaryAddresses from './canaries.json';
import { emulatorAddresses, guardConnections, startCanaries } from './connections';
import { type DnsBehaviour, startHostileDns } from './hostile-dns';
import { bombs, drip, http, type Misbehaviour, startHostileServer, withRobots404 } from './hostile-site';

// The crawler's own handler, in this process, fed real SQS records from fauxqs, writing to DynamoDB Local,
// against hostile servers and a hostile name server on loopback. Run through isolate.mjs: inside a network
// namespace where the forbidden addresses are canaries on loopback, so a bypass is a recorded hit.

const FETCH_TIMEOUT_MS = 1_500;
const FUNCTION_TIMEOUT_MS = 30_000;

type Outcome = string;
interface Case {
  readonly name: string;
  /** The seed; `{host}` stands for the case's own hostile server. */
  readonly url: string;
  readonly server?: Misbehaviour;
  /** Outcomes that are right for this case; the first is the expected one. */
  readonly expect: readonly Outcome[];
}

const page = (body = '<title>ok</title><p>fine</p>') =>
  http('200 OK', { 'content-type': 'text/html', 'content-length': Buffer.byteLength(body) }, body);
const ok: Misbehaviour = withRobots404((s) => s.end(page()));
const redirectTo = (location: string): Misbehaviour =>
  withRobots404((s) => s.end(http('302 Found', { location, 'content-length': 0 })));

/** Every spelling of a forbidden target that a URL can carry. */
const FORBIDDEN_URLS = [
  'http://169.254.169.254/latest/meta-data/',
  'http://0xa9fea9fe/',
  'http://2852039166/',
  'http://0251.0376.0251.0376/',
  'http://169.254.43518/',
  'http://[::169.254.169.254]/',
  'http://[::a9fe:a9fe]/',
  'http://[::ffff:169.254.169.254]/',
  'http://[::ffff:a9fe:a9fe]/',
  'http://[::ffff:0:a9fe:a9fe]/',
  'http://[64:ff9b::169.254.169.254]/',
  'http://[2002:a9fe:a9fe::]/',
  'http://[::127.0.0.1]/',
  'http://[::7f00:1]/',
  'http://10.0.0.1/',
  'http://012.0.0.1/',
  'http://172.16.0.1/',
  'http://192.168.1.1/',
  'http://100.64.0.1/',
  'http://192.0.0.170/',
  'http://[fd00::1]/',
  'http://[fe80::1]/',
  'http://127.0.0.1:1/',
  'http://localhost/',
  'http://a.localhost/',
  'http://[::1]/',
  'http://0.0.0.0/',
  'http://%31%30.0.0.1/',
];

/** Names the hostile DNS server answers, and how. */
const DNS: Record<string, DnsBehaviour> = {
  'metadata.evil.test': { a: ['169.254.169.254'] },
  'private.evil.test': { a: ['10.0.0.1'] },
  'mixed.evil.test': { a: ['93.184.216.34', '192.168.1.1'] },
  'cname.evil.test': { cname: 'internal.corp.evil.test', a: ['172.16.0.1'] },
  'v6mapped.evil.test': { aaaa: ['::ffff:169.254.169.254'] },
  'v6compat.evil.test': { aaaa: ['::7f00:1'] },
  'nat64.evil.test': { aaaa: ['64:ff9b::a9fe:a9fe'] },
  'sixtofour.evil.test': { aaaa: ['2002:a9fe:a9fe::1'] },
  'ula.evil.test': { aaaa: ['fd00::1'] },
  'loopback.evil.test': { a: ['127.0.0.1'] },
  'cgnat.evil.test': { a: ['100.64.0.1'] },
  'zero.evil.test': { a: ['0.0.0.0'] },
  'v4ok-v6bad.evil.test': { a: ['93.184.216.34'], aaaa: ['::1'] },
  'nxdomain.evil.test': { rcode: 'NXDOMAIN' },
  'servfail.evil.test': { rcode: 'SERVFAIL' },
  'refused.evil.test': { rcode: 'REFUSED' },
  'silent.evil.test': { silent: true },
  'empty.evil.test': {},
};

const CASES: Case[] = [
  ...FORBIDDEN_URLS.map((url) => ({ name: `seed ${url}`, url, expect: ['blocked-address'] })),
  ...FORBIDDEN_URLS.map((url) => ({
    name: `redirect to ${url}`,
    url: 'http://{host}/',
    server: redirectTo(url),
    expect: ['blocked-address'],
  })),
  ...Object.entries(DNS).map(([name, b]) => ({
    name: `DNS ${name}`,
    url: `http://${name}/`,
    expect:
      'rcode' in b || 'silent' in b || (!('a' in b) && !('aaaa' in b)) ? ['dns-error'] : ['blocked-address'],
  })),
  {
    name: 'redirect to a name that resolves to metadata',
    url: 'http://{host}/',
    server: redirectTo('http://metadata.evil.test/'),
    expect: ['blocked-address'],
  },
  {
    name: 'robots.txt redirecting to metadata',
    url: 'http://{host}/',
    server: (s, p) =>
      p === '/robots.txt'
        ? s.end(http('301 Moved', { location: 'http://169.254.169.254/robots.txt', 'content-length': 0 }))
        : s.end(page()),
    expect: ['blocked-address'],
  },
  { name: 'a plain page (control)', url: 'http://{host}/', server: ok, expect: ['fetched'] },
  {
    name: '101 Switching Protocols on the page',
    url: 'http://{host}/',
    server: withRobots404((s) =>
      s.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n'),
    ),
    expect: ['http-error'],
  },
  {
    name: '101 Switching Protocols on robots.txt',
    url: 'http://{host}/',
    server: (s, p) =>
      p === '/robots.txt'
        ? s.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n')
        : s.end(page()),
    expect: ['skipped-robots'],
  },
  {
    name: 'close before any response',
    url: 'http://{host}/',
    server: withRobots404((s) => s.end()),
    expect: ['network-error'],
  },
  {
    name: 'reset before any response',
    url: 'http://{host}/',
    server: withRobots404((s) => s.resetAndDestroy()),
    expect: ['network-error'],
  },
  {
    name: 'silence after the request',
    url: 'http://{host}/',
    server: withRobots404(() => undefined),
    expect: ['timeout'],
  },
  {
    name: 'silence on robots.txt',
    url: 'http://{host}/',
    server: (s, p) => (p === '/robots.txt' ? undefined : s.end(page())),
    expect: ['skipped-robots'],
  },
  {
    name: 'headers that never end',
    url: 'http://{host}/',
    server: withRobots404((s) => {
      s.write('HTTP/1.1 200 OK\r\n');
      drip(s, () => 'X-Slow: 1\r\n');
    }),
    expect: ['timeout', 'network-error'],
  },
  {
    name: 'a body that never ends',
    url: 'http://{host}/',
    server: withRobots404((s) => {
      s.write('HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ntransfer-encoding: chunked\r\n\r\n');
      drip(s, () => '5\r\n<p>x\n\r\n');
    }),
    expect: ['timeout'],
  },
  {
    name: 'a garbage status line',
    url: 'http://{host}/',
    server: withRobots404((s) => s.end('SSH-2.0-OpenSSH_9.6\r\n')),
    expect: ['network-error'],
  },
  {
    name: 'an HTTP/0.9 reply',
    url: 'http://{host}/',
    server: withRobots404((s) => s.end('<html>no status line</html>')),
    expect: ['network-error'],
  },
  {
    name: 'headers over 100 KB',
    url: 'http://{host}/',
    server: withRobots404((s) =>
      s.end(http('200 OK', { 'content-type': 'text/html', 'x-big': 'a'.repeat(100_000) }, 'x')),
    ),
    expect: ['network-error'],
  },
  {
    name: 'an unsupported Content-Encoding with the connection held open',
    url: 'http://{host}/',
    server: withRobots404((s) =>
      s.write(
        http(
          '200 OK',
          { 'content-type': 'text/html', 'content-encoding': 'zstd', 'content-length': 99_999 },
          'xx',
        ),
      ),
    ),
    expect: ['unsupported-encoding'],
  },
  {
    name: 'stacked Content-Encodings',
    url: 'http://{host}/',
    server: withRobots404((s) =>
      s.end(
        http(
          '200 OK',
          { 'content-type': 'text/html', 'content-encoding': 'gzip, br', 'content-length': 2 },
          'xx',
        ),
      ),
    ),
    expect: ['unsupported-encoding'],
  },
  {
    name: 'a body that is not the gzip it claims',
    url: 'http://{host}/',
    server: withRobots404((s) =>
      s.end(
        http(
          '200 OK',
          { 'content-type': 'text/html', 'content-encoding': 'gzip', 'content-length': 8 },
          'not-gzip',
        ),
      ),
    ),
    expect: ['bad-encoding'],
  },
  ...(['gzip', 'deflate', 'br'] as const).map((enc) => {
    const body = bombs[enc]();
    return {
      name: `a ${enc} bomb (64 MiB decoded)`,
      url: 'http://{host}/',
      server: withRobots404((s) =>
        s.end(
          http(
            '200 OK',
            { 'content-type': 'text/html', 'content-encoding': enc, 'content-length': body.length },
            body,
          ),
        ),
      ),
      expect: ['too-large'],
    };
  }),
  {
    name: 'a declared body over the cap',
    url: 'http://{host}/',
    server: withRobots404((s) =>
      s.write(http('200 OK', { 'content-type': 'text/html', 'content-length': 50_000_000 })),
    ),
    expect: ['too-large'],
  },
  {
    name: 'only a 103 Early Hints',
    url: 'http://{host}/',
    server: withRobots404((s) => s.write('HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n')),
    expect: ['timeout'],
  },
  {
    name: 'a Content-Length longer than the body, then close',
    url: 'http://{host}/',
    server: withRobots404((s) =>
      s.end(http('200 OK', { 'content-type': 'text/html', 'content-length': 5_000 }, '<p>short')),
    ),
    expect: ['network-error'],
  },
  {
    name: 'a bad chunk size',
    url: 'http://{host}/',
    server: withRobots404((s) =>
      s.end(
        'HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n',
      ),
    ),
    expect: ['network-error'],
  },
  {
    name: 'a redirect loop',
    url: 'http://{host}/a',
    server: withRobots404((s, p) =>
      s.end(http('302 Found', { location: p === '/a' ? '/b' : '/a', 'content-length': 0 })),
    ),
    expect: ['redirect-loop'],
  },
  {
    name: 'an endless redirect chain',
    url: 'http://{host}/r/0',
    server: withRobots404((s, p) =>
      s.end(http('302 Found', { location: `/r/${Number(p.split('/')[2]) + 1}`, 'content-length': 0 })),
    ),
    expect: ['too-many-redirects'],
  },
  {
    name: 'a redirect to file:///etc/passwd',
    url: 'http://{host}/',
    server: redirectTo('file:///etc/passwd'),
    expect: ['invalid-url'],
  },
  {
    name: 'a redirect to gopher:',
    url: 'http://{host}/',
    server: redirectTo('gopher://127.0.0.1:25/'),
    expect: ['invalid-url'],
  },
  {
    name: 'a redirect to a 1,500-character URL',
    url: 'http://{host}/',
    server: redirectTo(`/${'x'.repeat(1_500)}`),
    expect: ['invalid-url'],
  },
  {
    name: '429 Too Many Requests',
    url: 'http://{host}/',
    server: withRobots404((s) => s.end(http('429 Too Many', { 'content-length': 0 }))),
    expect: ['http-error'],
  },
  {
    name: '503 on every try',
    url: 'http://{host}/',
    server: withRobots404((s) => s.end(http('503 Unavailable', { 'content-length': 0 }))),
    expect: ['http-error'],
  },
  {
    name: 'robots.txt answering 500',
    url: 'http://{host}/',
    server: (s, p) =>
      p === '/robots.txt' ? s.end(http('500 Error', { 'content-length': 0 })) : s.end(page()),
    expect: ['skipped-robots'],
  },
  {
    name: 'no Content-Type',
    url: 'http://{host}/',
    server: withRobots404((s) => s.end(http('200 OK', { 'content-length': 2 }, 'hi'))),
    expect: ['not-html'],
  },
  {
    name: 'a 600 KiB robots.txt of wildcard rules',
    url: 'http://{host}/allowed',
    server: (s, p) => {
      if (p !== '/robots.txt') return void s.end(page());
      const lines = ['User-agent: *'];
      for (let i = 0, n = 0; n < 600 * 1024; i++) {
        const l = `Disallow: /*a*b*c*d*e*f*g*h*${i}*x$`;
        lines.push(l);
        n += l.length + 1;
      }
      const body = lines.join('\n');
      s.end(
        http('200 OK', { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) }, body),
      );
    },
    expect: ['fetched'],
  },
];

let sb: Sandbox<CrawlerOutput>;
let handler: (event: SQSEvent, context: Context) => Promise<SQSBatchResponse>;
let api: typeof import('../../cli/crawl-api');
let dns: Awaited<ReturnType<typeof startHostileDns>>;
let canaries: Awaited<ReturnType<typeof startCanaries>>;
let guard: ReturnType<typeof guardConnections>;
const servers: Array<Awaited<ReturnType<typeof startHostileServer>>> = [];
const caseUrl = new Map<Case, string>();
const allowed = new Set<string>();

beforeAll(async () => {
  sb = await startSandbox({ runFunctions: false, outputs: CRAWLER_OUTPUTS });
  dns = await startHostileDns(DNS);
  canaries = await startCanaries([...canaryAddresses.v4, ...canaryAddresses.v6], [80, 443]);
  for (const c of CASES) {
    if (!c.server) {
      caseUrl.set(c, c.url);
      continue;
    }
    const server = await startHostileServer(c.server);
    servers.push(server);
    caseUrl.set(c, c.url.replace('{host}', server.host));
  }
  const env = sb.functionEnvironment('FrontierConsumer');
  // The emulators are the only other thing on loopback this process may reach.
  for (const address of emulatorAddresses(env)) allowed.add(address);
  for (const s of servers) allowed.add(`127.0.0.1:${s.port}`);
  guard = guardConnections(() => allowed);
  Object.assign(process.env, env, {
    CRAWLER_TEST_ALLOW_LOOPBACK_PORTS: servers.map((s) => s.port).join(','),
    CRAWLER_TEST_DNS_SERVERS: dns.server,
    FETCH_TIMEOUT_MS: String(FETCH_TIMEOUT_MS),
    POWERTOOLS_LOG_LEVEL: 'SILENT',
    POWERTOOLS_METRICS_DISABLED: 'true',
  });
  api = await import('../../cli/crawl-api');
  ({ handler } = await import('../../functions/crawler/handler'));
}, 180_000);

afterAll(async () => {
  guard?.restore();
  await Promise.all(servers.map((s) => s.stop()));
  await dns?.stop();
  await canaries?.stop();
  await sb?.stop();
});

interface Invocation {
  records: number;
  failed: string[];
  ms: number;
}

/** Lambda's poller, by hand: receive, invoke, delete what succeeded, make failures visible again at once. */
async function drainFrontier(
  maxRounds: number,
): Promise<{ invocations: Invocation[]; urlOf: Map<string, string> }> {
  const queueUrl = sb.target.outputs.FrontierQueueUrl;
  const source: EventSourceSpec = {
    queueUrl,
    queueArn: 'arn:aws:sqs:us-east-1:000000000000:frontier.fifo',
    batchSize: 10,
    maxConcurrency: 2,
    reportBatchItemFailures: true,
  };
  const invocations: Invocation[] = [];
  const urlOf = new Map<string, string>();
  for (let round = 0, empty = 0; round < maxRounds && empty < 2; round++) {
    const out = await sb.target.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queueUrl,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 1,
        MessageSystemAttributeNames: ['All'],
      }),
    );
    const messages: Message[] = out.Messages ?? [];
    if (messages.length === 0) {
      empty++;
      continue;
    }
    empty = 0;
    const event: SQSEvent = { Records: messages.map((m) => toSqsRecord(m, source)) };
    for (const r of event.Records) urlOf.set(r.messageId, JSON.parse(r.body).payload.url);
    const deadline = Date.now() + FUNCTION_TIMEOUT_MS;
    const context = {
      getRemainingTimeInMillis: () => deadline - Date.now(),
      functionName: 'crawler',
      awsRequestId: randomUUID(),
    } as unknown as Context;
    const started = Date.now();
    const response = await Promise.race([
      handler(event, context),
      new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error('handler ran past the function timeout')), FUNCTION_TIMEOUT_MS),
      ),
    ]);
    const failed = response.batchItemFailures.map((f) => f.itemIdentifier);
    invocations.push({ records: messages.length, failed, ms: Date.now() - started });
    for (const m of messages) {
      if (failed.includes(m.MessageId ?? ''))
        await sb.target.sqs.send(
          new ChangeMessageVisibilityCommand({
            QueueUrl: queueUrl,
            ReceiptHandle: m.ReceiptHandle,
            VisibilityTimeout: 0,
          }),
        );
      else
        await sb.target.sqs.send(
          new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: m.ReceiptHandle }),
        );
    }
  }
  return { invocations, urlOf };
}

describe('the crawler handler against hostile servers, addresses and DNS (isolated)', () => {
  it('runs in a network namespace with canaries on the forbidden addresses', () => {
    if (process.env.CI) expect(process.env.ADVERSARIAL_ISOLATED).toBe('1');
    if (process.env.ADVERSARIAL_ISOLATED === '1')
      expect(canaries.listening).toBeGreaterThanOrEqual(canaryAddresses.v4.length * 2);
  });

  it(`gives each of ${CASES.length} hostile cases its outcome, never connects where it must not, and never fails a batch-mate`, async () => {
    const crawlId = `adv-${randomUUID()}`;
    const seeds = [...new Set(CASES.map((c) => caseUrl.get(c) as string))];
    const hosts = [...new Set(seeds.map((u) => new URL(u).host))];
    await api.submitCrawl(sb.target, { crawlId, seeds, maxPages: 10_000, maxDepth: 0, allowedHosts: hosts });
    // An over-long URL that passes the message schema (2,048) but not canonicalisation (1,024).
    const longUrl = `http://${servers[0]?.host}/${'y'.repeat(1_500)}`;
    await sb.target.sqs.send(
      new SendMessageCommand({
        QueueUrl: sb.target.outputs.FrontierQueueUrl,
        MessageBody: JSON.stringify({
          type: 'frontier.url',
          version: 1,
          crawlId,
          correlationId: 'adv',
          sentAt: new Date().toISOString(),
          payload: { url: longUrl, depth: 0 },
        }),
        MessageGroupId: 'long-url',
        MessageDeduplicationId: randomUUID(),
      }),
    );

    const { invocations, urlOf } = await drainFrontier(200);

    const urls = await api.listUrls(sb.target, crawlId);
    const outcomeOf = new Map(urls.map((u) => [String(u.url), String(u.outcome ?? '(none)')]));
    const wrong: string[] = [];
    for (const c of CASES) {
      const url = canonicalizeUrl(caseUrl.get(c) as string);
      const got = outcomeOf.get(url) ?? '(no record)';
      if (!c.expect.includes(got)) wrong.push(`${c.name}: expected ${c.expect.join('|')}, got ${got}`);
    }
    expect(wrong).toEqual([]);
    expect(urls.filter((u) => !u.outcome).map((u) => u.url)).toEqual([]);
    expect(
      urls.some((u) => u.outcome === 'invalid-url' && String(u.url).startsWith(longUrl.slice(0, 100))),
    ).toBe(true);

    // Nothing reached a forbidden address: no canary accepted, and the guard refused nothing.
    expect(canaries.hits).toEqual([]);
    expect(guard.forbidden()).toEqual([]);

    // Only records whose own fetch failed transiently were handed back; every invocation ended in time.
    const transient = new Set(['network-error', 'timeout', 'http-error', 'dns-error']);
    for (const inv of invocations) {
      expect(inv.ms).toBeLessThan(FUNCTION_TIMEOUT_MS);
      for (const id of inv.failed) {
        const outcome = outcomeOf.get(canonicalizeUrl(urlOf.get(id) as string));
        expect(transient.has(String(outcome)), `${urlOf.get(id)} (${outcome}) was retried`).toBe(true);
      }
    }
    const dlq = await sb.target.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: sb.target.outputs.FrontierDlqUrl, MaxNumberOfMessages: 10 }),
    );
    expect(dlq.Messages ?? []).toEqual([]);
    await sb.target.sqs.send(new PurgeQueueCommand({ QueueUrl: sb.target.outputs.ParseQueueUrl }));
  }, 300_000);

  it('records dead-lettered on a URL whose message fails every receive, as it goes to the DLQ', async () => {
    const crawlId = `adv-dlq-${randomUUID()}`;
    const url = `http://${servers[0]?.host}/held`;
    await api.submitCrawl(sb.target, { crawlId, seeds: [url], maxPages: 10, maxDepth: 0 });
    // Another message holds a live lease on the URL for the whole test: every receive of this one fails.
    await holdLease(
      sb.target.ddb,
      sb.target.outputs.UrlsTableName,
      { crawlId, url },
      600_000,
      'another-message',
    );
    const { invocations } = await drainFrontier(20);
    expect(invocations.filter((i) => i.failed.length > 0)).toHaveLength(5);
    const record = (await api.listUrls(sb.target, crawlId)).find((u) => u.url === url);
    expect(record?.outcome).toBe('dead-lettered');
    const dlq = await sb.target.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: sb.target.outputs.FrontierDlqUrl,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 1,
      }),
    );
    expect((dlq.Messages ?? []).map((m) => JSON.parse(m.Body ?? '{}').payload.url)).toEqual([url]);
  });
});
