import { existsSync, readFileSync, statSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';

/**
 * The fixture site of the portable suite: the static files in localstack/fixture-site, served by nginx in
 * the LocalStack compose file and by `serveFixtureSite` on loopback for the sandbox. The expected crawl is
 * worked out here from the files themselves (links by a plain pattern, robots.txt's one Disallow), not by
 * the crawler's own parser, so the test and the code under test cannot share a mistake.
 */
export const FIXTURE_DIR = path.join(import.meta.dirname, '..', '..', 'localstack', 'fixture-site');

const TYPES: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.txt': 'text/plain' };

const fileOf = (urlPath: string) => path.join(FIXTURE_DIR, urlPath === '/' ? 'index.html' : urlPath);

/** Serve the fixture files on loopback as nginx does: index.html for `/`, 404 for anything else. */
export async function serveFixtureSite(): Promise<{ url: string; port: number; stop(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    const urlPath = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const file = fileOf(urlPath);
    if (!file.startsWith(FIXTURE_DIR) || !existsSync(file) || !statSync(file).isFile())
      return void res.writeHead(404, { 'content-type': 'text/html' }).end('<title>404</title>');
    res.writeHead(200, { 'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream' });
    res.end(readFileSync(file));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    port,
    stop: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** What a correct crawl of the fixture site from `root` stores and records, within `maxDepth` hops. */
export function expectedFixtureCrawl(root: string, maxDepth: number) {
  const base = new URL(root);
  const disallowed = readFileSync(path.join(FIXTURE_DIR, 'robots.txt'), 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('Disallow:'))
    .map((l) => l.slice('Disallow:'.length).trim());
  const stored = new Set<string>();
  const outcomes = new Map<string, string>();
  let level = [base.href];
  for (let depth = 0; depth <= maxDepth && level.length > 0; depth++) {
    const next: string[] = [];
    for (const href of level) {
      if (outcomes.has(href)) continue;
      const u = new URL(href);
      const file = fileOf(u.pathname);
      if (disallowed.some((prefix) => u.pathname.startsWith(prefix))) outcomes.set(href, 'skipped-robots');
      else if (!existsSync(file)) outcomes.set(href, 'http-error');
      else if (!file.endsWith('.html')) outcomes.set(href, 'not-html');
      else {
        outcomes.set(href, 'fetched');
        stored.add(href);
        for (const m of readFileSync(file, 'utf8').matchAll(/href="([^"]+)"/g)) {
          const link = new URL(m[1] as string, u);
          if (link.host === base.host && !outcomes.has(link.href)) next.push(link.href);
        }
      }
    }
    level = next;
  }
  return { stored, outcomes };
}
