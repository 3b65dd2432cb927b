import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { decideFetch } from '../../functions/crawler/policy';
import {
  loadRobots,
  MAX_CRAWL_DELAY_MS,
  RobotsCache,
  type RobotsRules,
  robotsDecision,
} from '../../functions/crawler/robots';

const UA = 'sqs-crawler-pipeline/0.1';
const robotsUrl = 'http://site.example/robots.txt';

describe('robotsDecision (RFC 9309)', () => {
  const body = [
    'User-agent: *',
    'Disallow: /private/',
    'Allow: /private/open',
    'Crawl-delay: 2',
    '',
    'User-agent: other-bot',
    'Disallow: /',
  ].join('\n');

  it('follows the group for our user agent, with the longest match winning', () => {
    const rules = robotsDecision(robotsUrl, UA, { status: 200, body });
    expect(rules.isAllowed('http://site.example/public')).toBe(true);
    expect(rules.isAllowed('http://site.example/private/secret')).toBe(false);
    expect(rules.isAllowed('http://site.example/private/open')).toBe(true);
    expect(rules.crawlDelayMs).toBe(2_000);
  });

  it('uses a group that names the agent over the * group', () => {
    const rules = robotsDecision(robotsUrl, 'other-bot', { status: 200, body });
    expect(rules.isAllowed('http://site.example/public')).toBe(false);
  });

  it('allows everything when robots.txt is unavailable (4xx)', () => {
    const rules = robotsDecision(robotsUrl, UA, { status: 404, body: '' });
    expect(rules.source).toBe('unavailable');
    expect(rules.isAllowed('http://site.example/anything')).toBe(true);
  });

  it('disallows everything when robots.txt is unreachable (5xx or network failure)', () => {
    expect(robotsDecision(robotsUrl, UA, { status: 503, body: '' }).isAllowed('http://site.example/')).toBe(
      false,
    );
    expect(robotsDecision(robotsUrl, UA, 'unreachable').isAllowed('http://site.example/')).toBe(false);
  });

  it('clamps an absurd Crawl-delay', () => {
    const rules = robotsDecision(robotsUrl, UA, { status: 200, body: 'User-agent: *\nCrawl-delay: 86400' });
    expect(rules.crawlDelayMs).toBe(MAX_CRAWL_DELAY_MS);
  });

  it('treats an empty robots.txt as allow-all', () => {
    expect(robotsDecision(robotsUrl, UA, { status: 200, body: '' }).isAllowed('http://site.example/x')).toBe(
      true,
    );
  });
});

describe('RobotsCache', () => {
  it('loads each origin once while fresh', async () => {
    const cache = new RobotsCache(60_000);
    let loads = 0;
    const load = async (): Promise<RobotsRules> => {
      loads++;
      return { isAllowed: () => true, crawlDelayMs: 0, source: 'parsed' };
    };
    await cache.get('http://a.example', load);
    await cache.get('http://a.example', load);
    await cache.get('http://b.example', load);
    expect(loads).toBe(2);
  });
});

describe('decideFetch', () => {
  const job = {
    crawlId: 'c1',
    seeds: ['http://site.example/'],
    maxPages: 10,
    maxDepth: 2,
    allowedHosts: ['site.example'],
    createdAt: '2026-01-01T00:00:00Z',
  };
  const allowAll: RobotsRules = { isAllowed: () => true, crawlDelayMs: 500, source: 'parsed' };

  it('fetches an in-scope, allowed URL within depth, passing on the crawl delay', () => {
    expect(decideFetch({ url: 'http://site.example/a', depth: 2, job, robots: allowAll })).toEqual({
      kind: 'fetch',
      crawlDelayMs: 500,
    });
  });

  it.each([
    [{ url: 'http://other.example/', depth: 0 }, 'out-of-scope'],
    [{ url: 'http://site.example/deep', depth: 3 }, 'too-deep'],
  ])('skips %o as %s', (input, outcome) => {
    expect(decideFetch({ ...input, job, robots: allowAll })).toMatchObject({ kind: 'skip', outcome });
  });

  it('skips a robots-disallowed URL and an unknown crawl with their outcomes', () => {
    const deny: RobotsRules = { isAllowed: () => false, crawlDelayMs: 0, source: 'parsed' };
    expect(decideFetch({ url: 'http://site.example/a', depth: 0, job, robots: deny })).toMatchObject({
      outcome: 'skipped-robots',
    });
    expect(
      decideFetch({ url: 'http://site.example/a', depth: 0, job: undefined, robots: allowAll }),
    ).toMatchObject({
      outcome: 'unknown-crawl',
    });
  });
});

describe('robots rule matching', () => {
  /** A small seeded generator, so a failing case can be replayed. */
  function rng(seed: number) {
    let x = seed >>> 0 || 1;
    return () => {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      return (x >>> 0) / 2 ** 32;
    };
  }
  const pick = (r: () => number, s: string) => s[Math.floor(r() * s.length)] as string;

  it('decides exactly as robots-parser does on 3,000 random rule sets and paths', async () => {
    const robotsParser = (await import('robots-parser')).default;
    const r = rng(20261123);
    const alphabet = 'ab/*$?=%c';
    let disagreements = 0;
    for (let n = 0; n < 3_000; n++) {
      const lines = ['User-agent: *'];
      const count = 1 + Math.floor(r() * 6);
      for (let i = 0; i < count; i++) {
        let pattern = '/';
        const len = Math.floor(r() * 7);
        for (let j = 0; j < len; j++) pattern += pick(r, alphabet);
        lines.push(`${r() < 0.5 ? 'Allow' : 'Disallow'}: ${pattern}`);
      }
      let path = '/';
      const plen = Math.floor(r() * 9);
      for (let j = 0; j < plen; j++) path += pick(r, 'ab/c$*');
      const url = `http://site.example${path}`;
      const body = lines.join('\n');
      const ours = robotsDecision(robotsUrl, UA, { status: 200, body }).isAllowed(url);
      const theirs = robotsParser(robotsUrl, body).isAllowed(url, UA) !== false;
      if (ours !== theirs) disagreements++;
      expect(ours, `${body}\n${url}`).toBe(theirs);
    }
    expect(disagreements).toBe(0);
  });

  it('matches wildcards, the end anchor, the longest rule and allow on a tie', () => {
    const body = [
      'User-agent: *',
      'Disallow: /*.pdf$',
      'Disallow: /a*b*c',
      'Allow: /a1b2c3',
      'Disallow: /same',
      'Allow: /same',
    ].join('\n');
    const rules = robotsDecision(robotsUrl, UA, { status: 200, body });
    expect(rules.isAllowed('http://site.example/doc.pdf')).toBe(false);
    expect(rules.isAllowed('http://site.example/doc.pdf?x=1')).toBe(true);
    expect(rules.isAllowed('http://site.example/axxbyyc/z')).toBe(false);
    expect(rules.isAllowed('http://site.example/axxcyyb')).toBe(true);
    expect(rules.isAllowed('http://site.example/a1b2c3')).toBe(true);
    expect(rules.isAllowed('http://site.example/same')).toBe(true);
  });

  it('keeps a hostile 512 KiB file of wildcard rules to one linear pass per rule', () => {
    const lines = ['User-agent: *'];
    for (let i = 0, size = 0; size < 512 * 1024; i++) {
      const line = `Disallow: /*a*b*c*d*e*f*g*h*${i}*x$`;
      lines.push(line);
      size += line.length + 1;
    }
    lines.push('Disallow: /*secret');
    const rules = robotsDecision(robotsUrl, UA, { status: 200, body: lines.join('\n') });
    // 200 checks of long paths: robots-parser's matcher needs minutes for this, the segment matcher well under a second.
    const long = `http://site.example/${'abcdefgh'.repeat(120)}`;
    for (let i = 0; i < 200; i++) expect(rules.isAllowed(`${long}${i}`)).toBe(true);
    expect(rules.isAllowed(`${long}/secret`)).toBe(false);
  });
});

describe('loadRobots over HTTP (RFC 9309 §2.3.1)', () => {
  const routes = new Map<string, (res: import('node:http').ServerResponse) => void>();
  let server: import('node:http').Server;
  let port = 0;
  const origin = () => `http://127.0.0.1:${port}`;
  const policy = () => ({
    userAgent: UA,
    timeoutMs: 1_000,
    maxBodyBytes: 100_000,
    allowLoopbackPorts: new Set([port]),
  });

  beforeAll(async () => {
    const http = await import('node:http');
    server = http.createServer((req, res) => {
      const route = routes.get(req.headers['x-case'] as string) ?? routes.get(req.url ?? '');
      if (route) route(res);
      else res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as import('node:net').AddressInfo).port;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  /** Serve `respond` for /robots.txt, then load the origin's rules. */
  async function rulesFor(respond: (res: import('node:http').ServerResponse) => void) {
    routes.set('/robots.txt', respond);
    routes.set('/moved-robots.txt', (res) =>
      res.writeHead(200, { 'content-type': 'text/plain' }).end('User-agent: *\nDisallow: /moved'),
    );
    return loadRobots(origin(), policy());
  }

  it.each([500, 502, 503, 504, 599])('disallows everything on HTTP %i', async (status) => {
    const rules = await rulesFor((res) => res.writeHead(status).end());
    expect(rules.source).toBe('unreachable');
    expect(rules.isAllowed(`${origin()}/page`)).toBe(false);
  });

  it.each([400, 401, 403, 404, 410, 429])('allows everything on HTTP %i', async (status) => {
    const rules = await rulesFor((res) => res.writeHead(status).end());
    if (status === 429) {
      // 429 is "too many requests": treated like a server error, not as an absent file.
      expect(rules.source).toBe('unreachable');
      return;
    }
    expect(rules.source).toBe('unavailable');
    expect(rules.isAllowed(`${origin()}/page`)).toBe(true);
  });

  it('follows a redirect to the rules and parses them', async () => {
    const rules = await rulesFor((res) => res.writeHead(301, { location: '/moved-robots.txt' }).end());
    expect(rules.source).toBe('parsed');
    expect(rules.isAllowed(`${origin()}/moved/x`)).toBe(false);
    expect(rules.isAllowed(`${origin()}/other`)).toBe(true);
  });

  it('parses a robots.txt of any content type', async () => {
    const rules = await rulesFor((res) =>
      res.writeHead(200, { 'content-type': 'text/html' }).end('User-agent: *\nDisallow: /x'),
    );
    expect(rules.isAllowed(`${origin()}/x`)).toBe(false);
  });

  it('reloads unreachable rules after a minute and parsed ones only after their TTL, and evicts the oldest', async () => {
    vi.useFakeTimers();
    try {
      const cache = new RobotsCache(3_600_000, 2);
      const loads: string[] = [];
      const loader =
        (source: RobotsRules['source']) =>
        async (origin: string): Promise<RobotsRules> => {
          loads.push(origin);
          return { isAllowed: () => source !== 'unreachable', crawlDelayMs: 0, source };
        };
      await cache.get('http://down.example', loader('unreachable'));
      await cache.get('http://up.example', loader('parsed'));
      vi.advanceTimersByTime(61_000);
      await cache.get('http://down.example', loader('parsed'));
      await cache.get('http://up.example', loader('parsed'));
      expect(loads).toEqual(['http://down.example', 'http://up.example', 'http://down.example']);
      // A third origin in a cache of two evicts the oldest entry, which is then loaded again.
      await cache.get('http://third.example', loader('parsed'));
      await cache.get('http://up.example', loader('parsed'));
      expect(loads.slice(3)).toEqual(['http://third.example', 'http://up.example']);
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('decideFetch details', () => {
  const job = {
    crawlId: 'c1',
    seeds: ['http://site.example/'],
    maxPages: 10,
    maxDepth: 2,
    allowedHosts: ['site.example', 'other.example:8080'],
    createdAt: '2026-01-01T00:00:00Z',
  };
  const rules = (allow: boolean, source: RobotsRules['source'] = 'parsed'): RobotsRules => ({
    isAllowed: () => allow,
    crawlDelayMs: 1_500,
    source,
  });

  it('says why it skips, in words an operator can act on', () => {
    expect(
      decideFetch({ url: 'http://site.example/', depth: 0, job: undefined, robots: rules(true) }),
    ).toEqual({
      kind: 'skip',
      outcome: 'unknown-crawl',
      detail: 'no crawl job with this crawlId',
    });
    expect(decideFetch({ url: 'http://elsewhere.example/', depth: 0, job, robots: rules(true) })).toEqual({
      kind: 'skip',
      outcome: 'out-of-scope',
      detail: 'elsewhere.example is not in site.example, other.example:8080',
    });
    expect(decideFetch({ url: 'http://site.example/', depth: 3, job, robots: rules(true) })).toEqual({
      kind: 'skip',
      outcome: 'too-deep',
      detail: 'depth 3 > 2',
    });
    expect(
      decideFetch({ url: 'http://site.example/', depth: 2, job, robots: rules(false, 'unreachable') }),
    ).toEqual({
      kind: 'skip',
      outcome: 'skipped-robots',
      detail: 'robots.txt (unreachable) disallows it',
    });
    expect(decideFetch({ url: 'http://site.example/', depth: 2, job, robots: undefined })).toEqual({
      kind: 'skip',
      outcome: 'skipped-robots',
      detail: 'robots.txt (missing) disallows it',
    });
  });

  it('fetches in scope, at the depth limit, with the host’s crawl delay, matching host and port', () => {
    expect(decideFetch({ url: 'http://other.example:8080/x', depth: 2, job, robots: rules(true) })).toEqual({
      kind: 'fetch',
      crawlDelayMs: 1_500,
    });
    expect(decideFetch({ url: 'http://other.example/x', depth: 0, job, robots: rules(true) })).toMatchObject({
      outcome: 'out-of-scope',
    });
  });
});

describe('robots matching and loading, edge cases', () => {
  it('treats HTTP 500 itself as unreachable', () => {
    expect(robotsDecision(robotsUrl, UA, { status: 500, body: '' }).source).toBe('unreachable');
    expect(robotsDecision(robotsUrl, UA, { status: 499, body: '' }).source).toBe('unavailable');
  });

  it('lets an allow win a tie whichever line comes first', () => {
    const rules = robotsDecision(robotsUrl, UA, {
      status: 200,
      body: 'User-agent: *\nAllow: /same\nDisallow: /same',
    });
    expect(rules.isAllowed('http://site.example/same')).toBe(true);
  });

  it('anchors a $ pattern at the end without letting its segments overlap', () => {
    const rules = robotsDecision(robotsUrl, UA, { status: 200, body: 'User-agent: *\nDisallow: /ab*b$' });
    expect(rules.isAllowed('http://site.example/ab')).toBe(true);
    expect(rules.isAllowed('http://site.example/abb')).toBe(false);
    expect(rules.isAllowed('http://site.example/abxb')).toBe(false);
    expect(rules.isAllowed('http://site.example/abxbx')).toBe(true);
  });

  it('compares percent-escapes case-insensitively, as robots-parser does', () => {
    const rules = robotsDecision(robotsUrl, UA, { status: 200, body: 'User-agent: *\nDisallow: /a%2Fb' });
    expect(rules.isAllowed('http://site.example/a%2fb')).toBe(false);
  });

  it('reloads parsed rules at exactly their TTL', async () => {
    vi.useFakeTimers();
    try {
      const cache = new RobotsCache(10_000);
      let loads = 0;
      const load = async (): Promise<RobotsRules> => {
        loads++;
        return { isAllowed: () => true, crawlDelayMs: 0, source: 'parsed' };
      };
      await cache.get('http://a.example', load);
      vi.advanceTimersByTime(9_999);
      await cache.get('http://a.example', load);
      expect(loads).toBe(1);
      vi.advanceTimersByTime(1);
      await cache.get('http://a.example', load);
      expect(loads).toBe(2);
    } finally {
      vi.useRealTimers();
    }
  });

  it('passes on what robots.txt cannot decide: a blocked address, a name that does not exist, a DNS outage', async () => {
    const policy = { userAgent: UA, timeoutMs: 300, maxBodyBytes: 1_000 };
    await expect(loadRobots('http://169.254.169.254', policy)).rejects.toMatchObject({
      name: 'BlockedAddressError',
    });
    await expect(loadRobots('http://gone.invalid', policy)).rejects.toMatchObject({ name: 'DnsError' });
    const silent = async () => new Promise<Array<{ address: string; family: number }>>(() => undefined);
    await expect(loadRobots('http://slow.example', { ...policy, resolver: silent })).rejects.toMatchObject({
      name: 'TransientFetchError',
      reason: 'dns-error',
    });
  });
});
