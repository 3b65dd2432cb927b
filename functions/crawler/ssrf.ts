import { lookup } from 'node:dns/promises';
import ipaddr from 'ipaddr.js';
import { PermanentError } from '../shared/errors';

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
}

/**
 * Why an address must not be reached, or undefined when it is a public unicast address.
 * Everything ipaddr.js does not classify as plain 'unicast' is refused: loopback, private (RFC 1918),
 * link-local (169.254.0.0/16 with the metadata service, fe80::/10), CGNAT, multicast, broadcast,
 * unspecified, reserved, benchmarking, IPv6 ULA, and IPv4-mapped, NAT64, 6to4 and Teredo forms that
 * could smuggle an IPv4 target.
 */
export function blockedReason(address: string, port: number, policy: AddressPolicy = {}): string | undefined {
  if (!ipaddr.isValid(address)) return `"${address}" is not an IP address`;
  const parsed = ipaddr.parse(address);
  const range = parsed.range();
  if (range === 'loopback' && policy.allowLoopbackPorts?.has(port)) return undefined;
  if (range === 'unicast') return undefined;
  return `${address} is in the ${range} range`;
}

export interface ResolvedTarget {
  readonly address: string;
  readonly family: 4 | 6;
}

export type Resolver = (hostname: string) => Promise<Array<{ address: string; family: number }>>;
const systemResolver: Resolver = (hostname) => lookup(hostname, { all: true, verbatim: true });

/**
 * Resolve a URL's host and check every address it resolves to. One bad address blocks the host, since a
 * rebinding resolver could hand that one to the connection. Returns the address to pin the connection to.
 */
export async function resolveSafeTarget(
  url: URL,
  policy: AddressPolicy = {},
  resolver: Resolver = systemResolver,
): Promise<ResolvedTarget> {
  const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
  // WHATWG URL parsing already turned decimal, octal and hex IPv4 spellings into dotted form.
  const host = url.hostname.replace(/^\[|\]$/g, '');
  let addresses: Array<{ address: string; family: number }>;
  if (ipaddr.isValid(host)) {
    addresses = [{ address: host, family: host.includes(':') ? 6 : 4 }];
  } else {
    try {
      addresses = await resolver(host);
    } catch (error) {
      throw new DnsError(host, error);
    }
  }
  if (addresses.length === 0) throw new DnsError(host, new Error('no addresses'));
  for (const a of addresses) {
    const reason = blockedReason(a.address, port, policy);
    if (reason) throw new BlockedAddressError(url.host, reason);
  }
  const first = addresses[0] as { address: string; family: number };
  return { address: first.address, family: first.family === 6 ? 6 : 4 };
}

export class DnsError extends PermanentError {
  constructor(host: string, cause: unknown) {
    super('dns-error', `cannot resolve ${host}: ${(cause as Error)?.message ?? String(cause)}`, { cause });
    this.name = 'DnsError';
  }
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
