import { createHash } from 'node:crypto';
import { PermanentError } from '../kit/errors';

/**
 * Longest canonical URL, in bytes: a URL is the sort key of its URL and page records, and DynamoDB caps a
 * sort key at 1,024 bytes. A canonical URL is ASCII (the URL serializer percent-encodes the rest and the
 * host is punycode), so characters and bytes agree.
 */
export const MAX_URL_LENGTH = 1024;

export class InvalidUrlError extends PermanentError {
  constructor(input: string, why: string) {
    super('invalid-url', `"${input.slice(0, 200)}" is not a crawlable URL: ${why}`);
    this.name = 'InvalidUrlError';
  }
}

const UNRESERVED = /[A-Za-z0-9\-._~]/;

/** Uppercase percent-escapes and decode the ones that stand for unreserved characters (RFC 3986 §6.2.2). */
function normalizeEscapes(part: string): string {
  return part.replace(/%([0-9a-fA-F]{2})/g, (_, hex: string) => {
    const ch = String.fromCharCode(Number.parseInt(hex, 16));
    return UNRESERVED.test(ch) ? ch : `%${hex.toUpperCase()}`;
  });
}

/**
 * The one spelling of a URL used for dedup keys, message groups and storage:
 * http(s) only; scheme and host lowercased (IDN as punycode, trailing dot dropped); default port, fragment
 * and credentials dropped; dot segments resolved; percent-escapes normalised; query parameters sorted
 * (stable, so repeated keys keep their order); an empty query dropped.
 * @param base resolves relative references (a page URL, or its <base href>)
 * @throws InvalidUrlError for anything that is not an absolute http(s) URL of sane length
 */
export function canonicalizeUrl(input: string, base?: string): string {
  const raw = input.trim();
  if (raw.length === 0) throw new InvalidUrlError(input, 'empty');
  // Input may be longer than the canonical form (dot segments, default port); the parse cost stays bounded.
  if (raw.length > 4 * MAX_URL_LENGTH)
    throw new InvalidUrlError(input, `longer than ${4 * MAX_URL_LENGTH} characters before canonicalisation`);
  let url: URL;
  try {
    url = new URL(raw, base);
  } catch {
    throw new InvalidUrlError(input, 'does not parse');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new InvalidUrlError(input, `scheme ${url.protocol} is not http or https`);
  }
  if (url.hostname === '') throw new InvalidUrlError(input, 'no host');
  // Each setter re-parses the whole URL, so only what needs changing is set: most links have no
  // credentials, fragment, escape or query, and this was a twentieth of the parser's CPU with every
  // setter called (three times the cost, measured on the bench's links).
  if (url.username !== '') url.username = '';
  if (url.password !== '') url.password = '';
  // A bare "#" or "?" reads back as an empty hash or search but stays in href until it is set.
  if (url.href.includes('#')) url.hash = '';
  if (url.hostname.endsWith('.')) url.hostname = url.hostname.replace(/\.+$/, '');
  const path = url.pathname;
  if (path.includes('%')) url.pathname = normalizeEscapes(path);
  if (url.search !== '') {
    const params = new URLSearchParams(url.search);
    params.sort();
    const query = params.toString();
    url.search = query.length > 0 ? normalizeEscapes(query) : '';
  } else if (url.href.includes('?')) url.search = '';
  const out = url.href;
  if (Buffer.byteLength(out) > MAX_URL_LENGTH)
    throw new InvalidUrlError(input, `longer than ${MAX_URL_LENGTH} characters once canonical`);
  return out;
}

/** host[:port] of a canonical URL: the FIFO message group, so each host is one ordered, polite partition. */
export function hostKey(canonicalUrl: string): string {
  return new URL(canonicalUrl).host;
}

/** SQS caps a MessageGroupId at 128 characters. */
const MAX_GROUP_ID = 128;

/**
 * The frontier's message group for a canonical URL: its host, so each host is one ordered, polite
 * partition. A host too long for a group id (up to 253 characters of name plus a port) gets a stable
 * digest of itself instead, still one group per host.
 */
export function frontierGroupId(canonicalUrl: string): string {
  const host = hostKey(canonicalUrl);
  if (host.length <= MAX_GROUP_ID) return host;
  return `host-sha256-${createHash('sha256').update(host).digest('hex')}`;
}

/**
 * A key for a string that is not a canonical URL (an invalid one being recorded as such): the string itself
 * when it fits a sort key, otherwise its first bytes and a digest of the whole, so it is still unique.
 */
export function boundedUrlKey(raw: string): string {
  if (Buffer.byteLength(raw) <= MAX_URL_LENGTH) return raw;
  const digest = createHash('sha256').update(raw).digest('hex');
  // 900 bytes + a replacement character where the cut splits one (3 bytes) + "#sha256:" + 64 hex < 1,024.
  return `${Buffer.from(raw).subarray(0, 900).toString('utf8')}#sha256:${digest}`;
}

/** Stable id of a URL within a crawl: the FIFO deduplication id and the claim key. */
export function urlHash(crawlId: string, canonicalUrl: string): string {
  return createHash('sha256').update(crawlId).update('\n').update(canonicalUrl).digest('hex');
}
