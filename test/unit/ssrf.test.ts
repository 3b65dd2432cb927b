import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FetchOutcomeError, safeFetch, TransientFetchError } from '../../functions/crawler/safe-fetch';
import {
  BlockedAddressError,
  blockedReason,
  dnsResolver,
  parseAllowedPorts,
  parseAllowedTargets,
  resolveSafeTarget,
} from '../../functions/crawler/ssrf';
import { startHostileDns } from '../adversarial/hostile-dns';

const blocked: Array<[string, string]> = [
  ['loopback', 'http://127.0.0.1/'],
  ['loopback high', 'http://127.255.255.254/'],
  ['localhost name', 'http://localhost/'],
  ['decimal IPv4', 'http://2130706433/'],
  ['hex IPv4', 'http://0x7f000001/'],
  ['octal IPv4', 'http://0177.0.0.1/'],
  ['short IPv4', 'http://127.1/'],
  ['private 10/8', 'http://10.0.0.1/'],
  ['private 172.16/12', 'http://172.16.5.4/'],
  ['private 192.168/16', 'http://192.168.1.1/'],
  ['metadata service', 'http://169.254.169.254/latest/meta-data/'],
  ['metadata in decimal', 'http://2852039166/'],
  ['link-local', 'http://169.254.1.1/'],
  ['CGNAT', 'http://100.64.0.1/'],
  ['multicast', 'http://224.0.0.1/'],
  ['broadcast', 'http://255.255.255.255/'],
  ['unspecified', 'http://0.0.0.0/'],
  ['reserved', 'http://240.0.0.1/'],
  ['IPv6 loopback', 'http://[::1]/'],
  ['IPv6 unspecified', 'http://[::]/'],
  ['IPv6 ULA', 'http://[fd00::1]/'],
  ['IPv6 link-local', 'http://[fe80::1]/'],
  ['IPv4-mapped IPv6 loopback', 'http://[::ffff:127.0.0.1]/'],
  ['IPv4-mapped IPv6 metadata', 'http://[::ffff:169.254.169.254]/'],
  ['NAT64 of private', 'http://[64:ff9b::a00:1]/'],
  ['IPv6 multicast', 'http://[ff02::1]/'],
  ['6to4', 'http://[2002:7f00:1::]/'],
  // IPv6 forms that embed an IPv4 address; the URL parser rewrites [::127.0.0.1] to [::7f00:1].
  ['IPv4-compatible loopback', 'http://[::127.0.0.1]/'],
  ['IPv4-compatible metadata', 'http://[::169.254.169.254]/'],
  ['IPv4-compatible private', 'http://[::10.0.0.1]/'],
  ['IPv4-compatible public', 'http://[::8.8.8.8]/'],
  ['IPv4-compatible hex form', 'http://[::a9fe:a9fe]/'],
  ['IPv4-mapped hex form', 'http://[::ffff:7f00:1]/'],
  ['IPv4-mapped private', 'http://[::ffff:10.0.0.1]/'],
  ['IPv4-mapped CGNAT', 'http://[::ffff:100.64.0.1]/'],
  ['SIIT IPv4-translated', 'http://[::ffff:0:7f00:1]/'],
  ['SIIT metadata', 'http://[::ffff:0:a9fe:a9fe]/'],
  ['NAT64 loopback', 'http://[64:ff9b::127.0.0.1]/'],
  ['NAT64 metadata', 'http://[64:ff9b::a9fe:a9fe]/'],
  ['NAT64 public', 'http://[64:ff9b::808:808]/'],
  ['NAT64 local-use', 'http://[64:ff9b:1::a00:1]/'],
  ['6to4 metadata', 'http://[2002:a9fe:a9fe::1]/'],
  ['6to4 public', 'http://[2002:808:808::1]/'],
  ['Teredo', 'http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/'],
  ['IETF protocol block', 'http://[2001:2::1]/'],
  ['ORCHIDv2', 'http://[2001:20::1]/'],
  ['IPv6 documentation', 'http://[2001:db8::1]/'],
  ['IPv6 documentation 3fff', 'http://[3fff::1]/'],
  ['IPv6 site-local', 'http://[fec0::1]/'],
  ['IPv6 discard', 'http://[100::1]/'],
  ['IPv6 outside 2000::/3', 'http://[4000::1]/'],
  ['IPv6 loopback long form', 'http://[0:0:0:0:0:0:0:1]/'],
  ['IPv6 unspecified IPv4 form', 'http://[::0.0.0.0]/'],
  ['zero network', 'http://0.1.2.3/'],
  ['IPv4 documentation', 'http://192.0.2.10/'],
  ['IPv4 benchmarking', 'http://198.18.0.1/'],
  ['IETF protocol IPv4', 'http://192.0.0.170/'],
  ['6to4 relay anycast', 'http://192.88.99.1/'],
  ['TEST-NET-3', 'http://203.0.113.5/'],
  ['loopback in hex parts', 'http://0x7f.0.0.1/'],
  ['loopback in mixed parts', 'http://127.0.1/'],
  ['decimal metadata with dots', 'http://169.254.43518/'],
  ['trailing-dot IPv4', 'http://127.0.0.1./'],
  ['percent-encoded loopback', 'http://%31%32%37.0.0.1/'],
  ['fullwidth digits', 'http://１２７.０.０.１/'],
  ['AS112 IPv4', 'http://192.31.196.1/'],
  ['AS112 delegation IPv4', 'http://192.175.48.1/'],
  ['AMT IPv4', 'http://192.52.193.1/'],
  ['AS112 IPv6', 'http://[2620:4f:8000::1]/'],
  ['AS112 IPv6 in 2001::/23', 'http://[2001:4:112::1]/'],
  ['AMT IPv6', 'http://[2001:3::1]/'],
  ['ORCHIDv1', 'http://[2001:10::1]/'],
  ['IETF protocol assignment 2001:1::1', 'http://[2001:1::1]/'],
  ['drone remote ID block', 'http://[2001:30::1]/'],
  ['IPv6 benchmarking', 'http://[2001:2::1]/'],
];

/** A resolver that answers from a table, standing in for DNS without touching the network. */
const fakeDns =
  (table: Record<string, string[]>) =>
  async (host: string): Promise<Array<{ address: string; family: number }>> => {
    const addresses = table[host];
    if (!addresses) throw new Error(`ENOTFOUND ${host}`);
    return addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  };

describe('SSRF guard', () => {
  const resolver = fakeDns({ localhost: ['127.0.0.1', '::1'] });
  it.each(blocked)('blocks %s (%s)', async (_name, url) => {
    await expect(resolveSafeTarget(new URL(url), {}, resolver)).rejects.toBeInstanceOf(BlockedAddressError);
  });

  it('blocks a DNS name that resolves to a private address', async () => {
    const dns = fakeDns({ 'internal.example': ['10.1.2.3'] });
    await expect(resolveSafeTarget(new URL('http://internal.example/'), {}, dns)).rejects.toThrow(
      /10\.1\.2\.3 is in the private range/,
    );
  });

  it('blocks a DNS name when any one of its addresses is private (rebinding pool)', async () => {
    const dns = fakeDns({ 'mixed.example': ['93.184.216.34', '192.168.0.10'] });
    await expect(resolveSafeTarget(new URL('http://mixed.example/'), {}, dns)).rejects.toBeInstanceOf(
      BlockedAddressError,
    );
  });

  it('blocks a DNS answer in any IPv4-embedding IPv6 form', async () => {
    for (const address of [
      '::7f00:1',
      '::ffff:a9fe:a9fe',
      '64:ff9b::a00:1',
      '2002:c0a8:1::',
      '::ffff:0:a00:1',
    ]) {
      const dns = fakeDns({ 'embed.example': [address] });
      await expect(
        resolveSafeTarget(new URL('http://embed.example/'), {}, dns),
        address,
      ).rejects.toBeInstanceOf(BlockedAddressError);
    }
  });

  it('judges an IPv4-mapped answer as the IPv4 address it reaches', () => {
    expect(blockedReason('::ffff:8.8.8.8', 80)).toBeUndefined();
    expect(blockedReason('::ffff:127.0.0.1', 80)).toMatch(/loopback/);
  });

  it('lets public IPv4 and IPv6 addresses through and pins the first one', async () => {
    const dns = fakeDns({ 'public.example': ['93.184.216.34'] });
    await expect(resolveSafeTarget(new URL('https://public.example/'), {}, dns)).resolves.toEqual({
      address: '93.184.216.34',
      family: 4,
    });
    expect(blockedReason('8.8.8.8', 443)).toBeUndefined();
    expect(blockedReason('2606:4700:4700::1111', 443)).toBeUndefined();
  });

  it('lets loopback through only on a test-allowed port', () => {
    const allow = { allowLoopbackPorts: new Set([4010]) };
    expect(blockedReason('127.0.0.1', 4010, allow)).toBeUndefined();
    expect(blockedReason('127.0.0.1', 4011, allow)).toMatch(/loopback/);
    expect(blockedReason('10.0.0.1', 4010, allow)).toMatch(/private/);
  });

  it('lets a private address through only as an exact test-allowed address and port, never link-local', () => {
    const allow = {
      allowTargets: parseAllowedTargets('172.28.0.10:80, [fd00::10]:8080, 169.254.169.254:80'),
    };
    expect(blockedReason('172.28.0.10', 80, allow)).toBeUndefined();
    expect(blockedReason('::ffff:172.28.0.10', 80, allow)).toBeUndefined();
    expect(blockedReason('fd00:0:0::10', 8080, allow)).toBeUndefined();
    expect(blockedReason('172.28.0.10', 81, allow)).toMatch(/private/);
    expect(blockedReason('172.28.0.11', 80, allow)).toMatch(/private/);
    expect(blockedReason('fd00::11', 8080, allow)).toMatch(/outside 2000::\/3/);
    // The metadata service stays refused even when someone lists it.
    expect(blockedReason('169.254.169.254', 80, allow)).toMatch(/linkLocal/);
    expect(blockedReason('172.28.0.10', 80)).toMatch(/private/);
  });

  it('rejects a malformed target allow-list, and names in it, instead of guessing', () => {
    expect(parseAllowedTargets(undefined)).toEqual(new Set());
    expect(parseAllowedTargets('10.0.0.1:80')).toEqual(new Set(['10.0.0.1 80']));
    for (const bad of [
      'fixture-site:80',
      '10.0.0.1',
      '10.0.0.1:0',
      '10.0.0.1:70000',
      'fd00::1:80',
      '999.1.1.1:80',
    ])
      expect(() => parseAllowedTargets(bad), bad).toThrow(/ip:port pairs/);
  });

  it('rejects a malformed test allow-list instead of guessing', () => {
    expect(parseAllowedPorts('4001, 4002')).toEqual(new Set([4001, 4002]));
    expect(() => parseAllowedPorts('4001,abc')).toThrow(/comma-separated ports/);
  });
});

describe('SSRF guard details', () => {
  const noDns = async (): Promise<Array<{ address: string; family: number }>> => {
    throw new Error('the resolver must not be asked');
  };

  it('says why an address is refused', () => {
    expect(blockedReason('10.0.0.1', 80)).toBe('10.0.0.1 is in the private range');
    expect(blockedReason('::7f00:1', 80)).toBe('::7f00:1 is outside 2000::/3 global unicast (unicast)');
    expect(blockedReason('2001:db8::1', 80)).toBe('2001:db8::1 is in the reserved range');
    expect(blockedReason('example.com', 80)).toBe('"example.com" is not an IP address');
  });

  it('allows loopback only on an allowed port, for IPv4, IPv6 and IPv4-mapped loopback alike', () => {
    const policy = { allowLoopbackPorts: new Set([4010]) };
    for (const a of ['127.0.0.1', '::1', '::ffff:127.0.0.1']) {
      expect(blockedReason(a, 4010, policy), a).toBeUndefined();
      expect(blockedReason(a, 80, policy), a).toMatch(/loopback/);
    }
  });

  it('uses the scheme default port when the URL has none', async () => {
    const policy = { allowLoopbackPorts: new Set([443]) };
    await expect(resolveSafeTarget(new URL('https://127.0.0.1/'), policy, noDns)).resolves.toEqual({
      address: '127.0.0.1',
      family: 4,
    });
    await expect(resolveSafeTarget(new URL('http://127.0.0.1/'), policy, noDns)).rejects.toBeInstanceOf(
      BlockedAddressError,
    );
  });

  it('takes a bracketed IPv6 literal as the address without asking DNS', async () => {
    const policy = { allowLoopbackPorts: new Set([4010]) };
    await expect(resolveSafeTarget(new URL('http://[::1]:4010/'), policy, noDns)).resolves.toEqual({
      address: '::1',
      family: 6,
    });
  });

  it('pins the first answer with its family, and fails a name with no addresses as dns-error', async () => {
    const v6 = async () => [{ address: '2606:4700::1', family: 6 }];
    await expect(resolveSafeTarget(new URL('http://v6.example/'), {}, v6)).resolves.toEqual({
      address: '2606:4700::1',
      family: 6,
    });
    await expect(
      resolveSafeTarget(new URL('http://none.example/'), {}, async () => []),
    ).rejects.toMatchObject({
      name: 'DnsError',
      reason: 'dns-error',
      message: 'cannot resolve none.example: no addresses',
    });
  });

  it('fails at once when the deadline has already passed, without asking DNS', async () => {
    await expect(
      resolveSafeTarget(new URL('http://late.example/'), {}, noDns, Date.now() - 1),
    ).rejects.toMatchObject({
      name: 'DnsUnavailableError',
      reason: 'dns-error',
      message: 'DNS for late.example unavailable: no time left to resolve',
    });
  });

  it('abandons a resolver that does not answer by the deadline, naming the wait once', async () => {
    const silent = () => new Promise<Array<{ address: string; family: number }>>(() => undefined);
    const error = await resolveSafeTarget(
      new URL('http://quiet.example/'),
      {},
      silent,
      Date.now() + 50,
    ).catch((e: unknown) => e as Error);
    expect(error).toMatchObject({ name: 'DnsUnavailableError' });
    expect((error as Error).message).toMatch(/^DNS for quiet\.example unavailable: no answer within \d+ ms$/);
  });

  it('keeps the cause and names the host in every refusal', async () => {
    const cause = Object.assign(new Error('boom'), { code: 'ENOTFOUND' });
    const dnsError = await resolveSafeTarget(new URL('http://c.example/'), {}, async () => {
      throw cause;
    }).catch((e: unknown) => e as Error);
    expect((dnsError as Error).cause).toBe(cause);
    const blocked = await resolveSafeTarget(new URL('http://10.0.0.1:8080/')).catch(
      (e: unknown) => e as Error,
    );
    expect(blocked).toMatchObject({
      name: 'BlockedAddressError',
      reason: 'blocked-address',
      message: 'refusing to connect to 10.0.0.1:8080: 10.0.0.1 is in the private range',
    });
  });

  it('tells a name that does not exist (final) from a resolver that failed (retryable)', async () => {
    const failing = (code: string) => async () => {
      throw Object.assign(new Error(`query failed ${code}`), { code });
    };
    for (const code of ['ENOTFOUND', 'ENODATA', 'NOTFOUND', 'NODATA', 'ENONAME', 'EBADNAME', 'BADNAME'])
      await expect(resolveSafeTarget(new URL('http://x.example/'), {}, failing(code))).rejects.toMatchObject({
        name: 'DnsError',
        message: `cannot resolve x.example: query failed ${code}`,
      });
    for (const code of ['ESERVFAIL', 'ECONNREFUSED', 'ETIMEOUT'])
      await expect(resolveSafeTarget(new URL('http://x.example/'), {}, failing(code))).rejects.toMatchObject({
        name: 'DnsUnavailableError',
        message: `DNS for x.example unavailable: query failed ${code}`,
      });
  });

  it('accepts ports 1 to 65535 in the test allow-list and nothing else', () => {
    expect(parseAllowedPorts(undefined)).toEqual(new Set());
    expect(parseAllowedPorts('')).toEqual(new Set());
    expect(parseAllowedPorts('1,65535')).toEqual(new Set([1, 65_535]));
    for (const bad of ['0', '65536', '-1', '1.5', '80,'])
      expect(() => parseAllowedPorts(bad), bad).toThrow(`comma-separated ports, got "${bad}"`);
  });
});

describe('the c-ares resolver against a local name server', () => {
  let dns: Awaited<ReturnType<typeof startHostileDns>>;
  beforeAll(async () => {
    dns = await startHostileDns({
      'v4.test': { a: ['93.184.216.34'] },
      'v6.test': { aaaa: ['2606:4700::1'] },
      'both.test': { a: ['93.184.216.34'], aaaa: ['2606:4700::1'] },
      'alias.test': { cname: 'target.test', a: ['8.8.8.8'] },
      'nx.test': { rcode: 'NXDOMAIN' },
      'fail.test': { rcode: 'SERVFAIL' },
      'empty.test': {},
    });
  });
  afterAll(() => dns.stop());
  const resolve = () => dnsResolver([dns.server]);

  it('returns the A and AAAA answers with their families', async () => {
    expect(await resolve()('v4.test', 2_000)).toEqual([{ address: '93.184.216.34', family: 4 }]);
    expect(await resolve()('v6.test', 2_000)).toEqual([{ address: '2606:4700::1', family: 6 }]);
    expect(await resolve()('both.test', 2_000)).toEqual([
      { address: '93.184.216.34', family: 4 },
      { address: '2606:4700::1', family: 6 },
    ]);
    expect(await resolve()('alias.test', 2_000)).toEqual([{ address: '8.8.8.8', family: 4 }]);
  });

  it('reports a name that does not exist as final, and a failing server as retryable', async () => {
    await expect(resolveSafeTarget(new URL('http://nx.test/'), {}, resolve())).rejects.toMatchObject({
      name: 'DnsError',
    });
    await expect(resolveSafeTarget(new URL('http://empty.test/'), {}, resolve())).rejects.toMatchObject({
      name: 'DnsError',
    });
    await expect(resolveSafeTarget(new URL('http://fail.test/'), {}, resolve())).rejects.toMatchObject({
      name: 'DnsUnavailableError',
    });
  });
});

describe('safeFetch against a local server', () => {
  let server: http.Server;
  let port: number;
  const hits: string[] = [];
  beforeAll(async () => {
    server = http.createServer((req, res) => {
      hits.push(req.url ?? '');
      const path = req.url ?? '/';
      if (path === '/ok') {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end('<p>hi</p>');
      } else if (path === '/to-metadata') {
        res.writeHead(302, { location: 'http://169.254.169.254/latest/meta-data/' }).end();
      } else if (path === '/to-private-name') {
        res.writeHead(301, { location: 'http://internal.example/' }).end();
      } else if (path === '/loop') {
        res.writeHead(302, { location: '/loop2' }).end();
      } else if (path === '/loop2') {
        res.writeHead(302, { location: '/loop' }).end();
      } else if (path.startsWith('/chain/')) {
        const n = Number(path.split('/')[2]);
        res.writeHead(302, { location: `/chain/${n + 1}` }).end();
      } else if (path === '/pdf') {
        res.writeHead(200, { 'content-type': 'application/pdf' }).end('%PDF');
      } else if (path === '/big') {
        res.writeHead(200, { 'content-type': 'text/html' });
        res.end(Buffer.alloc(300_000, 'a'));
      } else if (path === '/slow') {
        setTimeout(() => res.writeHead(200, { 'content-type': 'text/html' }).end('late'), 3_000);
      } else if (path === '/500') {
        res.writeHead(503).end();
      } else {
        res.writeHead(404).end();
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  const policy = () => ({
    userAgent: 'test-bot',
    timeoutMs: 1_000,
    maxBodyBytes: 100_000,
    allowedContentTypes: ['text/html', 'application/xhtml+xml'],
    allowLoopbackPorts: new Set([port]),
    resolver: fakeDns({ 'internal.example': ['10.0.0.8'] }),
  });
  const at = (p: string) => `http://127.0.0.1:${port}${p}`;

  it('fetches an allowed HTML page', async () => {
    const page = await safeFetch(at('/ok'), policy());
    expect(page.status).toBe(200);
    expect(page.body.toString()).toBe('<p>hi</p>');
  });

  it('blocks a loopback server that is not on the test allow-list', async () => {
    await expect(safeFetch(at('/ok'), { ...policy(), allowLoopbackPorts: new Set() })).rejects.toBeInstanceOf(
      BlockedAddressError,
    );
  });

  it('blocks a redirect to the metadata address', async () => {
    await expect(safeFetch(at('/to-metadata'), policy())).rejects.toThrow(
      /169\.254\.169\.254 is in the linkLocal range/,
    );
  });

  it('blocks a redirect to a name that resolves to a private address', async () => {
    await expect(safeFetch(at('/to-private-name'), policy())).rejects.toBeInstanceOf(BlockedAddressError);
  });

  it('stops a redirect loop', async () => {
    await expect(safeFetch(at('/loop'), policy())).rejects.toMatchObject({ reason: 'redirect-loop' });
  });

  it('stops after 5 redirects', async () => {
    await expect(safeFetch(at('/chain/0'), policy())).rejects.toMatchObject({ reason: 'too-many-redirects' });
  });

  it('refuses a non-HTML content type before reading it', async () => {
    await expect(safeFetch(at('/pdf'), policy())).rejects.toMatchObject({ reason: 'not-html' });
  });

  it('abandons a body over the size cap', async () => {
    await expect(safeFetch(at('/big'), policy())).rejects.toMatchObject({ reason: 'too-large' });
  });

  it('times out a slow server as a retryable failure', async () => {
    await expect(safeFetch(at('/slow'), policy())).rejects.toBeInstanceOf(TransientFetchError);
  });

  it('treats 5xx as retryable and 404 as a recorded outcome', async () => {
    await expect(safeFetch(at('/500'), policy())).rejects.toBeInstanceOf(TransientFetchError);
    const notFound = safeFetch(at('/missing'), policy());
    await expect(notFound).rejects.toBeInstanceOf(FetchOutcomeError);
    await expect(notFound).rejects.toMatchObject({ reason: 'http-error', status: 404 });
  });

  it('refuses non-http schemes before any connection', async () => {
    await expect(safeFetch('file:///etc/passwd', policy())).rejects.toMatchObject({ reason: 'invalid-url' });
  });
});
