import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { canonicalizeUrl } from '../functions/crawl/url';

/**
 * A generated website on loopback, several hosts (one port each), with what a crawler meets in the wild:
 * robots.txt rules (one host disallows a folder, one has none, one answers 500), a redirect, a broken
 * link, a page over the size cap, a page large enough for the S3 claim check, a PDF, a slow page, and a
 * calendar-style trap that only the depth and page limits stop. `expected()` gives what a correct crawl
 * must store, derived from the same link model the server serves.
 */
export interface DemoSite {
  readonly hosts: string[];
  readonly ports: number[];
  readonly seeds: string[];
  /** Requests served, per path (host:port/path), to prove at-most-once fetches. */
  readonly hits: Map<string, number>;
  /** Every request in arrival order, as host:port/path. */
  readonly requestLog: string[];
  /** When each request of `requestLog` arrived (epoch ms), at the same index. */
  readonly requestTimes: number[];
  /** The most requests each host (host:port) was answering at once: the crawler's politeness, seen by the site. */
  readonly peakInFlight: Map<string, number>;
  /** TCP connections the site accepted: fewer than requests when a client keeps connections alive. */
  connectionsOpened(): number;
  /**
   * Make host:port/path answer 503 (on) or its normal page (off), to fail fetches on purpose; with
   * `retryAfterSeconds`, the 503 carries that Retry-After.
   */
  setFailing(hostPath: string, on: boolean, retryAfterSeconds?: number): void;
  /**
   * The links (as written in the HTML, relative or absolute) of the page served at a URL, after its
   * redirect; undefined where no HTML page is served. For computing the link graph of a crawl.
   */
  linksOf(url: string): string[] | undefined;
  expected(maxDepth: number): {
    stored: Set<string>;
    skippedRobots: Set<string>;
    failed: Map<string, string>;
  };
  stop(): Promise<void>;
}

export interface DemoSiteOptions {
  /** Regular pages per host. @default 60 */
  readonly pagesPerHost?: number;
  /** Milliseconds every page waits before answering. @default 0 */
  readonly latencyMs?: number;
  /** Bytes of the page that exceeds the crawler's cap. @default 3 MiB */
  readonly largeBytes?: number;
  /**
   * Bytes of text on every regular page. 65,000 gives the median web page's compressed size, about 18 KB
   * (HTTP Archive Web Almanac), at the crawler's Brotli quality. @default 600
   */
  readonly pageTextBytes?: number;
  /** Extra same-host links on every regular page, for link-heavy benchmarks. @default 0 */
  readonly extraLinksPerPage?: number;
  /** How long /slow takes to answer. @default 30 s, past any fetch timeout */
  readonly slowMs?: number;
  /**
   * Hosts to serve. The first four have the special cases; the rest are plain sites with no robots.txt,
   * linked in a ring, for crawls spread over many message groups. @default 4
   */
  readonly hostCount?: number;
}

type Page =
  | { kind: 'html'; links: string[]; body?: string }
  | { kind: 'redirect'; to: string }
  | { kind: 'status'; status: number }
  | { kind: 'pdf' }
  | { kind: 'large' }
  | { kind: 'slow' }
  | { kind: 'trap'; n: number };

const words = [
  'queue',
  'partition',
  'offset',
  'broker',
  'consumer',
  'lambda',
  'dynamo',
  'group',
  'order',
  'retry',
];

function bulkyText(bytes: number, seed: number): string {
  let out = '';
  let x = seed;
  while (out.length < bytes) {
    x = (x * 1_103_515_245 + 12_345) % 2_147_483_648;
    out += `${words[x % words.length]}${x % 9973} `;
  }
  return out;
}

export async function startDemoSite(options: DemoSiteOptions = {}): Promise<DemoSite> {
  const perHost = options.pagesPerHost ?? 60;
  const hostCount = Math.max(4, options.hostCount ?? 4);
  const servers = await Promise.all(Array.from({ length: hostCount }, () => listen()));
  const ports = servers.map((s) => (s.address() as AddressInfo).port);
  const hosts = ports.map((p) => `127.0.0.1:${p}`);
  const [a, b, c, d] = hosts as [string, string, string, string];
  const hits = new Map<string, number>();
  const requestLog: string[] = [];
  const inFlight = new Map<string, number>();
  const peakInFlight = new Map<string, number>();
  const requestTimes: number[] = [];
  /** Failing paths, with the Retry-After their 503 carries, if any. */
  const failing = new Map<string, number | undefined>();

  /** The link model: host → path → page. */
  const site = new Map<string, Map<string, Page>>();
  for (const [h, host] of hosts.entries()) {
    const pages = new Map<string, Page>();
    const other = hosts[(h + 1) % hosts.length] as string;
    pages.set('/', { kind: 'html', links: ['/page/1', '/page/2', `http://${other}/`] });
    for (let i = 1; i <= perHost; i++) {
      const links = [`/page/${i * 2}`, `/page/${i * 2 + 1}`, '/'];
      if (i % 7 === 0) links.push(`http://${other}/page/${i}`);
      for (let k = 1; k <= (options.extraLinksPerPage ?? 0); k++)
        links.push(`/page/${((i * 7919 + k * 104_729) % perHost) + 1}`);
      pages.set(`/page/${i}`, {
        kind: 'html',
        links: links.filter((l) => !l.startsWith('/page/') || Number(l.split('/')[2]) <= perHost),
        ...(options.pageTextBytes ? { body: bulkyText(options.pageTextBytes, h * 100_003 + i) } : {}),
      });
    }
    site.set(host, pages);
  }
  const home = site.get(a) as Map<string, Page>;
  (home.get('/') as { kind: 'html'; links: string[] }).links.push(
    '/old-home',
    '/missing',
    '/large',
    '/big-ok',
    '/file.pdf',
    '/trap/1',
    '/slow',
  );
  home.set('/old-home', { kind: 'redirect', to: '/' });
  home.set('/missing', { kind: 'status', status: 404 });
  home.set('/large', { kind: 'large' });
  home.set('/big-ok', { kind: 'html', links: ['/'], body: bulkyText(1_500_000, 7) });
  home.set('/file.pdf', { kind: 'pdf' });
  home.set('/slow', { kind: 'slow' });
  const hostB = site.get(b) as Map<string, Page>;
  (hostB.get('/') as { kind: 'html'; links: string[] }).links.push('/private/secret');
  hostB.set('/private/secret', { kind: 'html', links: [] });

  const robots = new Map<string, { status: number; body: string }>([
    [a, { status: 200, body: 'User-agent: *\nDisallow: /nothing-here/\n' }],
    [b, { status: 200, body: 'User-agent: *\nDisallow: /private/\nCrawl-delay: 0.01\n' }],
    [c, { status: 404, body: '' }],
    [d, { status: 500, body: '' }],
  ]);

  const lookup = (host: string, path: string): Page | undefined => {
    const trap = /^\/trap\/(\d+)$/.exec(path);
    if (host === a && trap) return { kind: 'trap', n: Number(trap[1]) };
    return site.get(host)?.get(path);
  };

  const handler = (host: string) => (req: http.IncomingMessage, res: http.ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0] as string;
    hits.set(`${host}${path}`, (hits.get(`${host}${path}`) ?? 0) + 1);
    requestLog.push(`${host}${path}`);
    requestTimes.push(Date.now());
    const now = (inFlight.get(host) ?? 0) + 1;
    inFlight.set(host, now);
    peakInFlight.set(host, Math.max(now, peakInFlight.get(host) ?? 0));
    res.once('close', () => inFlight.set(host, (inFlight.get(host) ?? 1) - 1));
    const respond = () => {
      if (path === '/robots.txt') {
        const r = robots.get(host) ?? { status: 404, body: '' };
        res.writeHead(r.status, { 'content-type': 'text/plain' }).end(r.body);
        return;
      }
      if (failing.has(`${host}${path}`)) {
        const retryAfter = failing.get(`${host}${path}`);
        return void res
          .writeHead(503, retryAfter === undefined ? {} : { 'retry-after': String(retryAfter) })
          .end();
      }
      const page = lookup(host, path);
      if (!page) return void res.writeHead(404, { 'content-type': 'text/html' }).end('<h1>not found</h1>');
      switch (page.kind) {
        case 'redirect':
          return void res.writeHead(301, { location: page.to }).end();
        case 'status':
          return void res.writeHead(page.status, { 'content-type': 'text/html' }).end();
        case 'pdf':
          return void res.writeHead(200, { 'content-type': 'application/pdf' }).end('%PDF-1.4 demo');
        case 'large':
          res.writeHead(200, { 'content-type': 'text/html' });
          return void res.end(
            `<html><body>${'x'.repeat(options.largeBytes ?? 3 * 1024 * 1024)}</body></html>`,
          );
        case 'slow':
          return void setTimeout(
            () => res.writeHead(200, { 'content-type': 'text/html' }).end('<p>slow</p>'),
            options.slowMs ?? 30_000,
          ).unref();
        case 'trap':
          return void res
            .writeHead(200, { 'content-type': 'text/html; charset=utf-8' })
            .end(
              `<title>Day ${page.n}</title><a href="/trap/${page.n + 1}">next day</a> <a href="/">home</a>`,
            );
        case 'html': {
          const links = page.links.map((l) => `<li><a href="${l}">${l}</a></li>`).join('');
          return void res
            .writeHead(200, { 'content-type': 'text/html; charset=utf-8' })
            .end(
              `<!doctype html><title>${host}${path}</title><meta name="description" content="demo page ${path}"><ul>${links}</ul><p>${page.body ?? bulkyText(600, path.length)}</p>`,
            );
        }
      }
    };
    if (options.latencyMs) setTimeout(respond, options.latencyMs);
    else respond();
  };
  for (const [i, s] of servers.entries()) s.on('request', handler(hosts[i] as string));
  let connections = 0;
  for (const s of servers) s.on('connection', () => connections++);

  return {
    hosts,
    ports,
    seeds: hosts.map((h) => `http://${h}/`),
    hits,
    requestLog,
    requestTimes,
    peakInFlight,
    connectionsOpened: () => connections,
    setFailing(hostPath, on, retryAfterSeconds) {
      if (on) failing.set(hostPath, retryAfterSeconds);
      else failing.delete(hostPath);
    },
    linksOf(url) {
      const u = new URL(url);
      let page = lookup(u.host, u.pathname);
      if (page?.kind === 'redirect') page = lookup(u.host, page.to);
      if (page?.kind === 'trap') return [`/trap/${page.n + 1}`, '/'];
      return page?.kind === 'html' ? [...page.links] : undefined;
    },
    expected(maxDepth) {
      // Breadth-first over the model with the crawler's rules. Depth limits only cut the trap (a chain),
      // so discovery order cannot change the answer as long as maxDepth covers the regular pages.
      const stored = new Set<string>();
      const skippedRobots = new Set<string>();
      const failed = new Map<string, string>();
      const seen = new Set<string>();
      let frontier = hosts.map((h) => ({ url: `http://${h}/`, depth: 0 }));
      for (const s of frontier) seen.add(s.url);
      while (frontier.length > 0) {
        const next: typeof frontier = [];
        for (const { url, depth } of frontier) {
          const u = new URL(url);
          const host = u.host;
          if (host === d || (host === b && u.pathname.startsWith('/private/'))) {
            skippedRobots.add(url);
            continue;
          }
          let page = lookup(host, u.pathname);
          if (page?.kind === 'redirect') page = lookup(host, page.to);
          if (!page) {
            failed.set(url, 'http-error');
            continue;
          }
          if (page.kind === 'status') failed.set(url, 'http-error');
          else if (page.kind === 'pdf') failed.set(url, 'not-html');
          else if (page.kind === 'large') failed.set(url, 'too-large');
          else if (page.kind === 'slow') failed.set(url, 'timeout');
          else if (page.kind === 'redirect') failed.set(url, 'too-many-redirects');
          else {
            stored.add(url);
            const links = page.kind === 'trap' ? [`/trap/${page.n + 1}`, '/'] : page.links;
            if (depth + 1 > maxDepth) continue;
            for (const l of links) {
              const abs = canonicalizeUrl(l, url);
              if (!seen.has(abs)) {
                seen.add(abs);
                next.push({ url: abs, depth: depth + 1 });
              }
            }
          }
        }
        frontier = next;
      }
      return { stored, skippedRobots, failed };
    },
    async stop() {
      await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
      for (const s of servers) s.closeAllConnections();
    },
  };
}

function listen(): Promise<http.Server> {
  return new Promise((resolve) => {
    const server = http.createServer();
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}
