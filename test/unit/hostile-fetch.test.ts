import dgram from 'node:dgram';
import http from 'node:http';
import type net from 'node:net';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadRobots, ROBOTS_MAX_BYTES, robotsText } from '../../functions/crawler/robots';
import {
  ConnectionPool,
  type FetchPolicy,
  safeFetch,
  TransientFetchError,
} from '../../functions/crawler/safe-fetch';
import { DnsError, dnsResolver, resolveSafeTarget, systemResolver } from '../../functions/crawler/ssrf';
import { startHostileServer } from '../adversarial/hostile-site';

// Hostile servers on loopback, each misbehaving at one step of an HTTP exchange. The property under test
// is the same for all: the fetch settles (page, outcome or retryable error) by its deadline, and leaves no
// socket open behind it.

const policyFor = (port: number, extra: Partial<FetchPolicy> = {}): FetchPolicy => ({
  userAgent: 'test-bot',
  timeoutMs: 800,
  maxBodyBytes: 100_000,
  allowedContentTypes: ['text/html'],
  allowLoopbackPorts: new Set([port]),
  ...extra,
});

/** Wait until the server has seen every client socket close: at most 3 s, far below the long deadlines. */
async function allClosed(sockets: Set<net.Socket>): Promise<boolean> {
  for (let i = 0; i < 150 && sockets.size > 0; i++) await new Promise((r) => setTimeout(r, 20));
  return sockets.size === 0;
}

describe('safeFetch against servers that misbehave', () => {
  // Cases that settle at once get a long deadline, so a socket left open would outlive the check below.
  const cases: Array<{
    name: string;
    reply: (s: net.Socket) => void;
    expect: Record<string, unknown>;
    timeoutMs?: number;
  }> = [
    {
      name: 'a 101 Switching Protocols reply',
      reply: (s) =>
        s.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n'),
      expect: { reason: 'http-error', status: 101 },
      timeoutMs: 20_000,
    },
    {
      name: 'a 101 reply with no Upgrade header',
      reply: (s) => s.write('HTTP/1.1 101 Switching Protocols\r\n\r\nhello'),
      expect: { reason: 'http-error', status: 101 },
    },
    {
      name: 'a connection closed before any response',
      reply: (s) => s.end(),
      expect: { reason: 'network-error' },
    },
    {
      name: 'a reset before any response',
      reply: (s) => s.resetAndDestroy(),
      expect: { reason: 'network-error' },
    },
    {
      name: 'a server that never answers',
      reply: () => undefined,
      expect: { reason: 'timeout' },
    },
    {
      name: 'headers that never end (slowloris)',
      reply: (s) => {
        s.write('HTTP/1.1 200 OK\r\n');
        const t = setInterval(() => (s.writable ? s.write('X-A: b\r\n') : clearInterval(t)), 50);
        s.on('close', () => clearInterval(t));
      },
      expect: { reason: 'timeout' },
    },
    {
      name: 'a body that never ends',
      reply: (s) => {
        s.write('HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\n\r\n');
        const t = setInterval(() => (s.writable ? s.write('1\r\na\r\n') : clearInterval(t)), 50);
        s.on('close', () => clearInterval(t));
      },
      expect: { reason: 'timeout' },
    },
    {
      name: 'a garbage status line',
      reply: (s) => s.end('SSH-2.0-OpenSSH_9.0\r\n'),
      expect: { reason: 'network-error' },
    },
    {
      name: 'an unsupported Content-Encoding, with the connection held open',
      reply: (s) =>
        s.write(
          'HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Encoding: zstd\r\nContent-Length: 100000\r\n\r\nxx',
        ),
      expect: { reason: 'unsupported-encoding' },
      timeoutMs: 20_000,
    },
    {
      name: 'a body that is not the gzip it claims',
      reply: (s) =>
        s.end(
          'HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Encoding: gzip\r\nContent-Length: 10\r\n\r\nnot-gzip!!',
        ),
      expect: { reason: 'bad-encoding' },
    },
    {
      name: 'a 1xx informational reply that is never followed by a final one',
      reply: (s) => s.write('HTTP/1.1 103 Early Hints\r\nLink: </a>; rel=preload\r\n\r\n'),
      expect: { reason: 'timeout' },
    },
    {
      name: 'a Content-Length longer than the body, then silence',
      reply: (s) =>
        s.write('HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 5000\r\n\r\n<p>short'),
      expect: { reason: 'timeout' },
    },
    {
      name: 'a Content-Length longer than the body, then close',
      reply: (s) =>
        s.end('HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 5000\r\n\r\n<p>short'),
      expect: { reason: 'network-error' },
    },
    {
      name: 'conflicting Content-Length headers',
      reply: (s) =>
        s.end(
          'HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 5\r\nContent-Length: 9\r\n\r\n<p>hello',
        ),
      expect: { reason: 'network-error' },
    },
  ];

  // With a keep-alive pool too: a connection that ended any way but a complete 2xx body is never kept.
  for (const c of cases.flatMap((c) => [
    { ...c, pooled: false },
    { ...c, pooled: true },
  ])) {
    it(`settles by the deadline and closes the socket on ${c.name}${c.pooled ? ', pooled' : ''}`, async () => {
      const server = await startHostileServer(c.reply);
      try {
        const started = Date.now();
        const policy = policyFor(server.port, {
          ...(c.timeoutMs ? { timeoutMs: c.timeoutMs } : {}),
          ...(c.pooled ? { connections: new ConnectionPool() } : {}),
        });
        const result = await safeFetch(`http://127.0.0.1:${server.port}/`, policy).then(
          () => ({ settled: 'resolved' }),
          (e: unknown) => e,
        );
        expect(result).toMatchObject(c.expect);
        // Bounded by the deadline plus scheduling slack on a loaded machine, never by the server.
        expect(Date.now() - started).toBeLessThan(policy.timeoutMs + 5_000);
        expect(await allClosed(server.sockets)).toBe(true);
      } finally {
        await server.stop();
      }
    });
  }

  it('fails robots.txt answered with 101 as unreachable (disallow) instead of hanging', async () => {
    const server = await startHostileServer((s) =>
      s.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n'),
    );
    try {
      const rules = await loadRobots(`http://127.0.0.1:${server.port}`, policyFor(server.port));
      expect(rules.source).toBe('unreachable');
      expect(rules.isAllowed(`http://127.0.0.1:${server.port}/`)).toBe(false);
    } finally {
      await server.stop();
    }
  });
});

describe('DNS inside the fetch deadline', () => {
  const never = () => new Promise<Array<{ address: string; family: number }>>(() => undefined);

  it('rejects a fetch whose resolver never answers as a retryable dns-error, by the deadline', async () => {
    const result = await safeFetch('http://slow-dns.example/', {
      ...policyFor(1),
      timeoutMs: 300,
      resolver: never,
    }).catch((e: unknown) => e);
    expect(result).toBeInstanceOf(TransientFetchError);
    expect(result).toMatchObject({ reason: expect.stringMatching(/dns-error|timeout/) });
  });

  it('settles every one of many fetches with unresponsive DNS, none waiting on the others', async () => {
    const results = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        safeFetch(`http://slow-${i}.example/`, { ...policyFor(1), timeoutMs: 300, resolver: never }).catch(
          (e: unknown) => e,
        ),
      ),
    );
    for (const r of results) expect(r).toBeInstanceOf(TransientFetchError);
  });

  it('answers RFC 6761 names without asking a server: .invalid never resolves, localhost is loopback', async () => {
    await expect(systemResolver('pipeline-test.invalid', 1_000)).rejects.toMatchObject({ code: 'ENOTFOUND' });
    await expect(resolveSafeTarget(new URL('http://x.invalid/'))).rejects.toBeInstanceOf(DnsError);
    expect((await systemResolver('a.localhost', 1_000)).map((a) => a.address)).toEqual(['127.0.0.1', '::1']);
  });

  it('never sends a query for a .invalid or localhost name, even to a server that would answer', async () => {
    const server = dgram.createSocket('udp4');
    let queries = 0;
    server.on('message', () => queries++);
    await new Promise<void>((r) => server.bind(0, '127.0.0.1', () => r()));
    const resolve = dnsResolver([`127.0.0.1:${server.address().port}`]);
    try {
      for (const name of ['invalid', 'x.invalid', 'A.B.INVALID'])
        await expect(resolve(name, 300)).rejects.toMatchObject({
          code: 'ENOTFOUND',
          message: `${name} is a reserved .invalid name`,
        });
      for (const name of ['localhost', 'app.localhost'])
        expect((await resolve(name, 300)).map((a) => a.address)).toEqual(['127.0.0.1', '::1']);
      expect(queries).toBe(0);
      // A name that merely contains the word is asked for, and this silent server makes it time out.
      await expect(resolve('invalid.example', 300)).rejects.toMatchObject({ code: 'ETIMEOUT' });
      expect(queries).toBeGreaterThan(0);
    } finally {
      server.close();
    }
  });

  it('cancels lookups to a name server that never answers, without holding the libuv thread pool', async () => {
    const blackhole = dgram.createSocket('udp4');
    let queries = 0;
    blackhole.on('message', () => queries++);
    await new Promise<void>((r) => blackhole.bind(0, '127.0.0.1', () => r()));
    const resolve = dnsResolver([`127.0.0.1:${blackhole.address().port}`]);
    try {
      let lookupsSettled = false;
      const lookups = Promise.allSettled(
        Array.from({ length: 8 }, (_, i) =>
          resolveSafeTarget(new URL(`http://n${i}.example/`), {}, resolve, Date.now() + 400),
        ),
      ).then((r) => {
        lookupsSettled = true;
        return r;
      });
      // zlib runs on the thread pool that getaddrinfo would be blocking.
      await promisify(zlib.gzip)(Buffer.alloc(1000));
      expect(lookupsSettled).toBe(false);
      const settled = await lookups;
      for (const s of settled) {
        expect(s.status).toBe('rejected');
        expect((s as PromiseRejectedResult).reason).toMatchObject({ name: 'DnsUnavailableError' });
      }
      expect(queries).toBeGreaterThan(0);
    } finally {
      blackhole.close();
    }
  });
});

describe('content codings: a page is decoded whole and at most to the cap', () => {
  const cap = 100_000;
  const exact = Buffer.alloc(cap, 'a');
  // Random bytes do not compress: their gzip is larger than the cap though they decode to exactly it.
  const incompressible = Buffer.from(Array.from({ length: cap }, (_, i) => (i * 7919 + (i >> 3) * 31) % 251));
  const bodies: Record<string, { encoding: string; body: Buffer }> = {
    '/gzip-at-cap': { encoding: 'gzip', body: zlib.gzipSync(exact) },
    '/gzip-over-cap': { encoding: 'gzip', body: zlib.gzipSync(Buffer.alloc(cap + 1, 'a')) },
    '/gzip-incompressible': { encoding: 'gzip', body: zlib.gzipSync(incompressible, { level: 0 }) },
    '/deflate-at-cap': { encoding: 'deflate', body: zlib.deflateSync(exact) },
    '/br-at-cap': { encoding: 'br', body: zlib.brotliCompressSync(exact) },
    '/br-over-cap': { encoding: 'br', body: zlib.brotliCompressSync(Buffer.alloc(cap + 1, 'a')) },
    '/gzip-cut-short': { encoding: 'gzip', body: zlib.gzipSync(exact).subarray(0, 40) },
    // Content codings are lowercased before the lookup: the first two name Object.prototype members.
    ...Object.fromEntries(
      ['constructor', '__proto__', 'compress'].map((encoding) => [
        `/odd/${encoding}`,
        { encoding, body: Buffer.from('<p>x</p>') },
      ]),
    ),
    '/robots.txt': {
      encoding: 'gzip',
      body: zlib.gzipSync(
        `User-agent: *\nDisallow: /blocked\n${'# filler line to pass the size limit\n'.repeat(
          Math.ceil(ROBOTS_MAX_BYTES / 36),
        )}Disallow: /late\n`,
      ),
    },
  };
  let server: http.Server;
  let port: number;
  beforeAll(async () => {
    server = http.createServer((req, res) => {
      const found = bodies[req.url ?? ''];
      if (!found) return void res.writeHead(404).end();
      res
        .writeHead(200, {
          'content-type': req.url === '/robots.txt' ? 'text/plain' : 'text/html',
          'content-encoding': found.encoding,
          'content-length': found.body.length,
        })
        .end(found.body);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));
  const fetchPath = (path: string) =>
    safeFetch(`http://127.0.0.1:${port}${path}`, policyFor(port, { maxBodyBytes: cap, timeoutMs: 5_000 }));

  it.each(['/gzip-at-cap', '/deflate-at-cap', '/br-at-cap'])(
    'keeps %s, decoded to exactly the cap',
    async (path) => {
      expect((await fetchPath(path)).body.equals(exact)).toBe(true);
    },
  );

  it('keeps a body whose encoded form is larger than the cap when it decodes to no more than it', async () => {
    expect(bodies['/gzip-incompressible']?.body.length).toBeGreaterThan(cap);
    expect((await fetchPath('/gzip-incompressible')).body.equals(incompressible)).toBe(true);
  });

  it.each(['/gzip-over-cap', '/br-over-cap'])(
    'refuses %s, one byte over the cap once decoded, as too-large',
    async (path) => {
      await expect(fetchPath(path)).rejects.toMatchObject({ name: 'FetchOutcomeError', reason: 'too-large' });
    },
  );

  it.each(['constructor', '__proto__', 'compress'])(
    'refuses content-encoding "%s" as unsupported, before reading the body',
    async (encoding) => {
      await expect(fetchPath(`/odd/${encoding}`)).rejects.toMatchObject({
        name: 'FetchOutcomeError',
        reason: 'unsupported-encoding',
      });
    },
  );

  it('refuses a gzip body cut short as bad-encoding', async () => {
    await expect(fetchPath('/gzip-cut-short')).rejects.toMatchObject({ reason: 'bad-encoding' });
  });

  it('still cuts an oversized robots.txt at its limit when it comes gzip-encoded', async () => {
    const rules = await loadRobots(`http://127.0.0.1:${port}`, policyFor(port, { timeoutMs: 5_000 }));
    expect(rules.source).toBe('parsed');
    expect(rules.isAllowed(`http://127.0.0.1:${port}/blocked/x`)).toBe(false);
    expect(rules.isAllowed(`http://127.0.0.1:${port}/late`)).toBe(true);
  });
});

describe('robots.txt size limit (RFC 9309 §2.5)', () => {
  let server: http.Server;
  let port: number;
  beforeAll(async () => {
    server = http.createServer((_req, res) => {
      const rule = 'Disallow: /blocked\n';
      const filler = '# filler line to pass the size limit\n'.repeat(Math.ceil(ROBOTS_MAX_BYTES / 36));
      // The rule sits before the limit; a second one after it must be ignored.
      res
        .writeHead(200, { 'content-type': 'text/plain' })
        .end(`User-agent: *\n${rule}${filler}Disallow: /late\n`);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('parses the first 512 KiB of an oversized robots.txt and ignores the rest', async () => {
    const rules = await loadRobots(`http://127.0.0.1:${port}`, policyFor(port, { timeoutMs: 5_000 }));
    expect(rules.source).toBe('parsed');
    expect(rules.isAllowed(`http://127.0.0.1:${port}/blocked/x`)).toBe(false);
    expect(rules.isAllowed(`http://127.0.0.1:${port}/late`)).toBe(true);
    expect(rules.isAllowed(`http://127.0.0.1:${port}/open`)).toBe(true);
  });

  it('drops the unfinished last line of a body cut at the limit', () => {
    const cut = Buffer.concat([
      Buffer.from('User-agent: *\nDisallow: /a\n'),
      Buffer.alloc(ROBOTS_MAX_BYTES, 'x'),
    ]).subarray(0, ROBOTS_MAX_BYTES);
    expect(robotsText(cut)).toBe('User-agent: *\nDisallow: /a\n');
    expect(robotsText(Buffer.from('Disallow: /b'))).toBe('Disallow: /b');
  });
});

/**
 * A raw HTTP/1.1 server that keeps connections open and answers each request on them through `reply`, told
 * which request of its connection this is (0 for the first), and counts the connections it accepted.
 */
async function startKeepAliveServer(reply: (socket: net.Socket, path: string, nth: number) => void) {
  const sockets = new Set<net.Socket>();
  let accepted = 0;
  const server = (await import('node:net')).createServer((socket) => {
    accepted++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let buffered = '';
    let nth = 0;
    socket.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('latin1');
      for (let end = buffered.indexOf('\r\n\r\n'); end >= 0; end = buffered.indexOf('\r\n\r\n')) {
        const head = buffered.slice(0, end);
        buffered = buffered.slice(end + 4);
        reply(socket, head.split(' ')[1] ?? '/', nth++);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    accepted: () => accepted,
    sockets,
    stop: () =>
      new Promise<void>((r) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => r());
      }),
  };
}

const ok = (body: string, status = '200 OK') =>
  `HTTP/1.1 ${status}\r\nContent-Type: text/html\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;

describe('safeFetch with a ConnectionPool (keep-alive within an invocation)', () => {
  it("fetches a host's pages over one connection, and closes it when the pool is closed", async () => {
    const server = await startKeepAliveServer((s, path) => s.write(ok(`<p>${path}</p>`)));
    const connections = new ConnectionPool();
    try {
      const policy = policyFor(server.port, { connections });
      for (const path of ['/a', '/b', '/c']) {
        const page = await safeFetch(`http://127.0.0.1:${server.port}${path}`, policy);
        expect(page.body.toString()).toBe(`<p>${path}</p>`);
      }
      expect(server.accepted()).toBe(1);
      connections.closeAll();
      expect(await allClosed(server.sockets)).toBe(true);
      // Without a pool, each fetch opens and closes its own connection.
      for (const path of ['/d', '/e'])
        await safeFetch(`http://127.0.0.1:${server.port}${path}`, policyFor(server.port));
      expect(server.accepted()).toBe(3);
    } finally {
      connections.closeAll();
      await server.stop();
    }
  });

  it('never reuses a connection after an error status or a refused body', async () => {
    const server = await startKeepAliveServer((s, path) => {
      if (path === '/fail') s.write(ok('busy', '503 Service Unavailable'));
      else if (path === '/big') s.write(ok('x'.repeat(200_000)));
      else s.write(ok('<p>fine</p>'));
    });
    const connections = new ConnectionPool();
    try {
      const policy = policyFor(server.port, { connections });
      const url = (path: string) => `http://127.0.0.1:${server.port}${path}`;
      await expect(safeFetch(url('/fail'), policy)).rejects.toMatchObject({
        reason: 'http-error',
        status: 503,
      });
      await expect(safeFetch(url('/big'), policy)).rejects.toMatchObject({ reason: 'too-large' });
      await safeFetch(url('/page'), policy);
      await safeFetch(url('/page'), policy);
      // The 503's and the oversized body's connections were destroyed; the two good fetches shared one.
      expect(server.accepted()).toBe(3);
    } finally {
      connections.closeAll();
      await server.stop();
    }
  });

  it('retries once on a new connection when a reused one turns out closed by the server', async () => {
    // Each connection answers its first request, then resets on the next: a server that closed it idle.
    const server = await startKeepAliveServer((s, path, nth) => {
      if (nth === 0) s.write(ok(`<p>${path}</p>`));
      else s.resetAndDestroy();
    });
    const connections = new ConnectionPool();
    try {
      const policy = policyFor(server.port, { connections });
      await safeFetch(`http://127.0.0.1:${server.port}/first`, policy);
      const page = await safeFetch(`http://127.0.0.1:${server.port}/second`, policy);
      expect(page.body.toString()).toBe('<p>/second</p>');
      expect(server.accepted()).toBe(2);
    } finally {
      connections.closeAll();
      await server.stop();
    }
  });

  it('never evicts an agent with a fetch in flight when the pool is full: the newcomer goes unpooled', async () => {
    // Server A answers after 300 ms; server B at once.
    const slow = await startKeepAliveServer((s) => {
      setTimeout(() => s.writable && s.write(ok('<p>slow</p>')), 300);
    });
    const fast = await startKeepAliveServer((s) => s.write(ok('<p>fast</p>')));
    const connections = new ConnectionPool(1);
    try {
      const policy = (port: number) =>
        policyFor(port, { connections, allowLoopbackPorts: new Set([slow.port, fast.port]) });
      const inFlight = safeFetch(`http://127.0.0.1:${slow.port}/`, policy(slow.port));
      await new Promise((r) => setTimeout(r, 100));
      const beside = await safeFetch(`http://127.0.0.1:${fast.port}/`, policy(fast.port));
      expect(beside.body.toString()).toBe('<p>fast</p>');
      expect((await inFlight).body.toString()).toBe('<p>slow</p>');
      // Unpooled, the fast fetch's connection was closed after it; the slow one's was kept.
      expect(await allClosed(fast.sockets)).toBe(true);
      expect(slow.sockets.size).toBe(1);
      // Idle now, the slow server's agent makes room for the fast server's.
      await safeFetch(`http://127.0.0.1:${fast.port}/`, policy(fast.port));
      expect(await allClosed(slow.sockets)).toBe(true);
    } finally {
      connections.closeAll();
      await slow.stop();
      await fast.stop();
    }
  });

  it('opens a new connection when the host resolves to another checked address', async () => {
    const server = await startKeepAliveServer((s) => s.write(ok('<p>hi</p>')));
    // 127.0.0.2 is loopback too; the server listens on 127.0.0.1 only, so reach it through both names'
    // answers in turn and count the agents by the requests that reached the server on new connections.
    const answers = ['127.0.0.1', '127.0.0.1', '127.0.0.2'];
    const connections = new ConnectionPool();
    const seen: string[] = [];
    const agentFor = connections.agentFor.bind(connections);
    connections.agentFor = (url, address) => {
      seen.push(address);
      return agentFor(url, address);
    };
    try {
      const policy = policyFor(server.port, {
        connections,
        resolver: async () => [{ address: answers.shift() as string, family: 4 }],
      });
      const url = `http://pooled.example:${server.port}/`;
      await safeFetch(url, policy);
      await safeFetch(url, policy);
      expect(server.accepted()).toBe(1);
      // The third answer is another address: its agent is a new one, so no connection of 127.0.0.1 is used.
      await expect(safeFetch(url, policy)).rejects.toMatchObject({ reason: 'network-error' });
      expect(seen).toEqual(['127.0.0.1', '127.0.0.1', '127.0.0.2']);
      expect(server.accepted()).toBe(1);
    } finally {
      connections.closeAll();
      await server.stop();
    }
  });
});
