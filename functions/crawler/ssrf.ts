import { Resolver as CaresResolver } from 'node:dns/promises';
import ipaddr from 'ipaddr.js';
import { settleBy } from '../kit/deadline';
import { PermanentError, RetryableError } from '../kit/errors';

export class BlockedAddressError extends PermanentError {
  constructor(host: string, detail: string) {
    super('blocked-address', `refusing to connect to ${host}: ${detail}`);
    this.name = 'BlockedAddressError';
  }
}

export interface AddressPolicy {
  /**
   * Test-only: loopback ports that may be reached (the demo site and fixture servers).
   * Comes from an environment variable the stack never sets; message content cannot reach it.
   */
  readonly allowLoopbackPorts?: ReadonlySet<number>;
  /**
   * Test-only: exact private addresses and ports that may be reached, as `allowedTargetKey` values (the
   * LocalStack fixture site on its Docker network). Set at deploy time from CDK context, which the prod
   * stage refuses; never link-local (the metadata service), whatever is listed.
   */
  readonly allowTargets?: ReadonlySet<string>;
}

/** The address a socket really dials: an IPv4-mapped IPv6 address (::ffff:a.b.c.d) is its IPv4 address. */
function dialled(address: string): ipaddr.IPv4 | ipaddr.IPv6 {
  const parsed = ipaddr.parse(address);
  return parsed.kind() === 'ipv6' && (parsed as ipaddr.IPv6).isIPv4MappedAddress()
    ? (parsed as ipaddr.IPv6).toIPv4Address()
    : parsed;
}

const targetKey = (address: ipaddr.IPv4 | ipaddr.IPv6, port: number) =>
  `${address.toNormalizedString()} ${port}`;

/** The key of an address and port in a test allow-list: the normalised dialled address, then the port. */
export function allowedTargetKey(address: string, port: number): string {
  return targetKey(dialled(address), port);
}

/** IPv6 global unicast (2000::/3): the only IPv6 block a public web server can be in. */
const GLOBAL_UNICAST_V6 = ipaddr.parseCIDR('2000::/3');

/**
 * Why an address must not be reached, or undefined when it is verifiably public unicast.
 *
 * The rule is an allow-list, so any form an attacker finds is refused unless it is plainly public:
 * - ipaddr.js must call the address 'unicast': its range table names IANA's special-purpose blocks
 *   (private, CGNAT, documentation, benchmarking, AS112, AMT, ORCHID, Teredo, 6to4, NAT64, ...), and the
 *   corpus in test/unit/ssrf.test.ts holds an address of each, so a library upgrade that drops one fails;
 * - IPv4-mapped IPv6 (::ffff:a.b.c.d) is judged as the IPv4 address the socket really reaches;
 * - any other IPv6 must also be global unicast (2000::/3). ipaddr.js calls an IPv4-compatible address
 *   (::/96, which the URL parser turns `[::127.0.0.1]` into) plain unicast; this refuses it, and every
 *   other form outside 2000::/3, whatever the library calls it.
 */
export function blockedReason(address: string, port: number, policy: AddressPolicy = {}): string | undefined {
  if (!ipaddr.isValid(address)) return `"${address}" is not an IP address`;
  const parsed = dialled(address);
  const range = parsed.range();
  if (range === 'loopback' && policy.allowLoopbackPorts?.has(port)) return undefined;
  if (range !== 'linkLocal' && policy.allowTargets?.has(targetKey(parsed, port))) return undefined;
  if (parsed.kind() === 'ipv6' && !(parsed as ipaddr.IPv6).match(GLOBAL_UNICAST_V6))
    return `${address} is outside 2000::/3 global unicast (${range})`;
  if (range !== 'unicast') return `${address} is in the ${range} range`;
  return undefined;
}

export interface ResolvedTarget {
  readonly address: string;
  readonly family: 4 | 6;
}

/**
 * Resolves a host name to its addresses within `timeoutMs`. It may return early or throw; the caller
 * enforces the deadline either way, so a resolver that never answers still cannot hold a fetch.
 */
export type Resolver = (
  hostname: string,
  timeoutMs: number,
) => Promise<Array<{ address: string; family: number }>>;

/** DNS answers that say the name has no address: final, not worth a retry. */
const NO_SUCH_NAME = new Set([
  'ENOTFOUND',
  'ENODATA',
  'NOTFOUND',
  'NODATA',
  'ENONAME',
  'EBADNAME',
  'BADNAME',
]);

/**
 * Resolution through c-ares (dns.Resolver), not getaddrinfo (dns.lookup): getaddrinfo runs on libuv's
 * four shared threads and cannot be cancelled, so a few names whose servers never answer would hold every
 * other lookup, zlib stream and file read of the invocation for glibc's 5 s × attempts. c-ares queries run
 * on the event loop, honour a per-query timeout and are cancelled at the deadline.
 * RFC 6761: "localhost" names are loopback and ".invalid" names never resolve, without asking a server.
 */
export const dnsResolver =
  (servers?: readonly string[]): Resolver =>
  async (hostname, timeoutMs) => {
    const name = hostname.toLowerCase();
    if (name === 'localhost' || name.endsWith('.localhost'))
      return [
        { address: '127.0.0.1', family: 4 },
        { address: '::1', family: 6 },
      ];
    if (name === 'invalid' || name.endsWith('.invalid'))
      throw Object.assign(new Error(`${hostname} is a reserved .invalid name`), { code: 'ENOTFOUND' });
    const resolver = new CaresResolver({ timeout: Math.max(50, Math.min(timeoutMs, 2_000)), tries: 3 });
    if (servers) resolver.setServers([...servers]);
    const cancel = setTimeout(() => resolver.cancel(), Math.max(1, timeoutMs));
    try {
      const [v4, v6] = await Promise.allSettled([resolver.resolve4(hostname), resolver.resolve6(hostname)]);
      const addresses = [
        ...(v4.status === 'fulfilled' ? v4.value.map((address) => ({ address, family: 4 })) : []),
        ...(v6.status === 'fulfilled' ? v6.value.map((address) => ({ address, family: 6 })) : []),
      ];
      if (addresses.length > 0) return addresses;
      const errors = [v4, v6].map((r) =>
        r.status === 'rejected' ? (r.reason as NodeJS.ErrnoException) : undefined,
      );
      // Both families answered "no such name": final. Any other failure (timeout, SERVFAIL, refused) may pass.
      if (errors.every((e) => NO_SUCH_NAME.has(String(e?.code)))) throw errors[0];
      throw Object.assign(new Error(errors.map((e) => e?.code ?? 'no answer').join('/')), {
        code: 'ETIMEOUT',
      });
    } finally {
      clearTimeout(cancel);
    }
  };

/** The resolver the crawler uses: c-ares with the system's name servers. */
export const systemResolver: Resolver = dnsResolver();

/**
 * Resolve a URL's host and check every address it resolves to. One bad address blocks the host, since a
 * rebinding resolver could hand that one to the connection. Returns the address to pin the connection to.
 * Resolution counts against `deadline` (epoch ms): past it, the lookup is abandoned as a transient failure.
 */
export async function resolveSafeTarget(
  url: URL,
  policy: AddressPolicy = {},
  resolver: Resolver = systemResolver,
  deadline = Date.now() + 10_000,
): Promise<ResolvedTarget> {
  const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
  // WHATWG URL parsing already turned decimal, octal and hex IPv4 spellings into dotted form.
  const host = url.hostname.replace(/^\[|\]$/g, '');
  let addresses: Array<{ address: string; family: number }>;
  if (ipaddr.isValid(host)) {
    addresses = [{ address: host, family: host.includes(':') ? 6 : 4 }];
  } else {
    addresses = await resolveWithin(host, resolver, deadline);
  }
  if (addresses.length === 0) throw new DnsError(host, new Error('no addresses'));
  for (const a of addresses) {
    const reason = blockedReason(a.address, port, policy);
    if (reason) throw new BlockedAddressError(url.host, reason);
  }
  const first = addresses[0] as { address: string; family: number };
  return { address: first.address, family: first.family === 6 ? 6 : 4 };
}

async function resolveWithin(
  host: string,
  resolver: Resolver,
  deadline: number,
): Promise<Array<{ address: string; family: number }>> {
  const remaining = deadline - Date.now();
  if (remaining <= 0) throw new DnsUnavailableError(host, new Error('no time left to resolve'));
  try {
    return await settleBy(
      resolver(host, remaining),
      remaining,
      () => new DnsUnavailableError(host, new Error(`no answer within ${remaining} ms`)),
    );
  } catch (error) {
    if (error instanceof DnsUnavailableError) throw error;
    const code = String((error as NodeJS.ErrnoException)?.code ?? '');
    if (NO_SUCH_NAME.has(code)) throw new DnsError(host, error);
    throw new DnsUnavailableError(host, error);
  }
}

/** The name does not exist or has no address: a recorded outcome. */
export class DnsError extends PermanentError {
  constructor(host: string, cause: unknown) {
    super('dns-error', `cannot resolve ${host}: ${(cause as Error)?.message ?? String(cause)}`, { cause });
    this.name = 'DnsError';
  }
}

/** The resolver did not answer in time or failed: worth a retry, like a connection timeout. */
export class DnsUnavailableError extends RetryableError {
  readonly reason = 'dns-error';
  constructor(host: string, cause: unknown) {
    super(`DNS for ${host} unavailable: ${(cause as Error)?.message ?? String(cause)}`, { cause });
    this.name = 'DnsUnavailableError';
  }
}

/**
 * Parse the test-only allow-list "address:port,[v6address]:port" from its environment variable.
 * Addresses must be literal IPs: a name could be re-pointed after the deploy.
 */
export function parseAllowedTargets(raw: string | undefined): ReadonlySet<string> {
  if (!raw) return new Set();
  const keys = new Set<string>();
  for (const entry of raw.split(',').map((e) => e.trim())) {
    const m = /^(?:\[([0-9a-fA-F:.]+)\]|(\d{1,3}(?:\.\d{1,3}){3})):(\d{1,5})$/.exec(entry);
    const address = m?.[1] ?? m?.[2];
    const port = Number(m?.[3]);
    if (!address || !ipaddr.isValid(address) || !Number.isInteger(port) || port < 1 || port > 65_535)
      throw new Error(
        `CRAWLER_TEST_ALLOW_TARGETS must be comma-separated ip:port pairs (IPv6 in brackets), got "${entry}"`,
      );
    keys.add(allowedTargetKey(address, port));
  }
  return keys;
}

/** Parse the test-only allow-list "port,port" from its environment variable. */
export function parseAllowedPorts(raw: string | undefined): ReadonlySet<number> {
  if (!raw) return new Set();
  const ports = raw.split(',').map((p) => Number(p.trim()));
  if (ports.some((p) => !Number.isInteger(p) || p < 1 || p > 65_535)) {
    throw new Error(`CRAWLER_TEST_ALLOW_LOOPBACK_PORTS must be comma-separated ports, got "${raw}"`);
  }
  return new Set(ports);
}
