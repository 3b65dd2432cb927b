import { createHash } from 'node:crypto';
import { PermanentError } from './errors';

export const MAX_URL_LENGTH = 2048;

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
  if (raw.length > MAX_URL_LENGTH)
    throw new InvalidUrlError(input, `longer than ${MAX_URL_LENGTH} characters`);
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
  url.username = '';
  url.password = '';
  url.hash = '';
  if (url.hostname.endsWith('.')) url.hostname = url.hostname.replace(/\.+$/, '');
  url.pathname = normalizeEscapes(url.pathname);
  // Always reassign: a bare "?" reads back as an empty search but stays in href until it is set.
  const params = new URLSearchParams(url.search);
  params.sort();
  const query = params.toString();
  url.search = query.length > 0 ? normalizeEscapes(query) : '';
  const out = url.toString();
  if (out.length > MAX_URL_LENGTH)
    throw new InvalidUrlError(input, `longer than ${MAX_URL_LENGTH} characters`);
  return out;
}

/** host[:port] of a canonical URL: the FIFO message group, so each host is one ordered, polite partition. */
export function hostKey(canonicalUrl: string): string {
  return new URL(canonicalUrl).host;
}

/** Stable id of a URL within a crawl: the FIFO deduplication id and the claim key. */
export function urlHash(crawlId: string, canonicalUrl: string): string {
  return createHash('sha256').update(crawlId).update('\n').update(canonicalUrl).digest('hex');
}
