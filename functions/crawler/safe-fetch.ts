import http from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import type { Readable } from 'node:stream';
import zlib from 'node:zlib';
import { PermanentError, RetryableError } from '../shared/errors';
import { canonicalizeUrl } from '../shared/url';
import { type AddressPolicy, type Resolver, resolveSafeTarget } from './ssrf';

// Hand-written on node:http because fetch/undici cannot pin one pre-checked address per request and
// re-check it on every redirect hop; that pinning is what defeats DNS rebinding.

export interface FetchPolicy extends AddressPolicy {
  readonly userAgent: string;
  /** Whole-fetch budget including redirects; keep it under the function timeout. */
  readonly timeoutMs: number;
  /** Decoded body bytes; larger bodies are abandoned while streaming. */
  readonly maxBodyBytes: number;
  /** Media types accepted for the final response; undefined accepts any (robots.txt). */
  readonly allowedContentTypes?: readonly string[];
  /** @default 5 */
  readonly maxRedirects?: number;
  /** @default the system resolver */
  readonly resolver?: Resolver;
}

export interface FetchedPage {
  readonly status: number;
  readonly finalUrl: string;
  readonly contentType: string;
  readonly body: Buffer;
  readonly redirects: readonly string[];
}

/** A fetch that ended in a recorded outcome rather than a page. */
export class FetchOutcomeError extends PermanentError {
  readonly status?: number;
  constructor(reason: string, message: string, status?: number) {
    super(reason, message);
    this.name = 'FetchOutcomeError';
    this.status = status;
  }
}

/** A fetch failure worth retrying later: timeouts, resets, 5xx, 429. */
export class TransientFetchError extends RetryableError {
  readonly reason: string;
  readonly status?: number;
  constructor(reason: string, message: string, status?: number) {
    super(message);
    this.name = 'TransientFetchError';
    this.reason = reason;
    this.status = status;
  }
}

const REDIRECT = new Set([301, 302, 303, 307, 308]);

/**
 * GET a URL safely: http(s) only, every hop's addresses checked and the connection pinned to the checked
 * address, at most `maxRedirects` hops with loop detection, one deadline for the whole fetch, the
 * content type checked before the body is read, and the decoded size capped while streaming.
 */
export async function safeFetch(rawUrl: string, policy: FetchPolicy): Promise<FetchedPage> {
  const deadline = Date.now() + policy.timeoutMs;
  const maxRedirects = policy.maxRedirects ?? 5;
  const seen = new Set<string>();
  const redirects: string[] = [];
  let current = canonicalizeUrl(rawUrl);
  for (;;) {
    seen.add(current);
    const response = await requestOnce(new URL(current), policy, deadline);
    const location = response.headers.location;
    if (REDIRECT.has(response.status) && location) {
      response.stream.destroy();
      const next = canonicalizeUrl(location, current);
      if (seen.has(next))
        throw new FetchOutcomeError('redirect-loop', `redirect loop at ${next}`, response.status);
      if (redirects.length >= maxRedirects) {
        throw new FetchOutcomeError(
          'too-many-redirects',
          `more than ${maxRedirects} redirects`,
          response.status,
        );
      }
      redirects.push(next);
      current = next;
      continue;
    }
    if (response.status === 429 || response.status >= 500) {
      response.stream.destroy();
      throw new TransientFetchError('http-error', `HTTP ${response.status} from ${current}`, response.status);
    }
    if (response.status >= 300) {
      response.stream.destroy();
      throw new FetchOutcomeError('http-error', `HTTP ${response.status} from ${current}`, response.status);
    }
    const contentType = String(response.headers['content-type'] ?? '');
    const mediaType = contentType.split(';')[0]?.trim().toLowerCase() ?? '';
    if (policy.allowedContentTypes && !policy.allowedContentTypes.includes(mediaType)) {
      response.stream.destroy();
      throw new FetchOutcomeError(
        'not-html',
        `content type "${mediaType || '(none)'}" is not crawled`,
        response.status,
      );
    }
    const declared = Number(response.headers['content-length'] ?? Number.NaN);
    const encoding = String(response.headers['content-encoding'] ?? 'identity').toLowerCase();
    if (encoding === 'identity' && declared > policy.maxBodyBytes) {
      response.stream.destroy();
      throw new FetchOutcomeError(
        'too-large',
        `declared ${declared} bytes, limit ${policy.maxBodyBytes}`,
        response.status,
      );
    }
    const body = await readCapped(response.stream, encoding, policy.maxBodyBytes, deadline, response.status);
    return { status: response.status, finalUrl: current, contentType, body, redirects };
  }
}

interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  stream: http.IncomingMessage;
}

async function requestOnce(url: URL, policy: FetchPolicy, deadline: number): Promise<RawResponse> {
  const target = await resolveSafeTarget(url, policy, policy.resolver);
  const remaining = deadline - Date.now();
  if (remaining <= 0) throw new TransientFetchError('timeout', `timed out before connecting to ${url.host}`);
  // Every lookup the socket makes gets the address checked above, so a second DNS answer cannot swap it.
  const pinned: LookupFunction = (_host, options, callback) => {
    if ((options as { all?: boolean }).all) {
      (callback as (e: null, a: Array<{ address: string; family: number }>) => void)(null, [target]);
    } else {
      callback(null, target.address, target.family);
    }
  };
  const client = url.protocol === 'https:' ? https : http;
  return new Promise<RawResponse>((resolve, reject) => {
    const req = client.request(
      url,
      {
        method: 'GET',
        agent: false,
        lookup: pinned,
        timeout: remaining,
        headers: {
          'user-agent': policy.userAgent,
          accept: 'text/html,application/xhtml+xml;q=0.9,*/*;q=0.1',
          'accept-encoding': 'gzip, deflate, br',
        },
      },
      (res) => resolve({ status: res.statusCode ?? 0, headers: res.headers, stream: res }),
    );
    const timer = setTimeout(
      () => req.destroy(new TransientFetchError('timeout', `no response from ${url.host} in time`)),
      remaining,
    );
    req.once('response', () => clearTimeout(timer));
    req.once('timeout', () =>
      req.destroy(new TransientFetchError('timeout', `connection to ${url.host} timed out`)),
    );
    req.once('error', (error) => {
      clearTimeout(timer);
      reject(
        error instanceof TransientFetchError
          ? error
          : new TransientFetchError('network-error', `${url.host}: ${error.message}`),
      );
    });
    req.end();
  });
}

function decoderFor(
  encoding: string,
  status: number,
): zlib.Gunzip | zlib.Inflate | zlib.BrotliDecompress | undefined {
  switch (encoding) {
    case 'identity':
    case '':
      return undefined;
    case 'gzip':
    case 'x-gzip':
      return zlib.createGunzip();
    case 'deflate':
      return zlib.createInflate();
    case 'br':
      return zlib.createBrotliDecompress();
    default:
      throw new FetchOutcomeError(
        'unsupported-encoding',
        `content-encoding "${encoding}" is not supported`,
        status,
      );
  }
}

/** Read the body, decoding gzip/deflate/br, and stop as soon as the decoded size passes the cap. */
async function readCapped(
  raw: http.IncomingMessage,
  encoding: string,
  maxBytes: number,
  deadline: number,
  status: number,
): Promise<Buffer> {
  const decoder = decoderFor(encoding, status);
  const stream: Readable = decoder ? raw.pipe(decoder) : raw;
  const chunks: Buffer[] = [];
  let size = 0;
  const timer = setTimeout(
    () => stream.destroy(new TransientFetchError('timeout', 'body not received in time')),
    Math.max(1, deadline - Date.now()),
  );
  raw.once('error', (e) => stream.destroy(e));
  try {
    for await (const chunk of stream) {
      size += (chunk as Buffer).length;
      if (size > maxBytes) {
        throw new FetchOutcomeError('too-large', `body passed ${maxBytes} decoded bytes`, status);
      }
      chunks.push(chunk as Buffer);
    }
  } catch (error) {
    if (error instanceof FetchOutcomeError || error instanceof TransientFetchError) throw error;
    if (decoder && (error as { code?: string }).code?.startsWith('Z_')) {
      throw new FetchOutcomeError('bad-encoding', `body is not valid ${encoding}`, status);
    }
    throw new TransientFetchError('network-error', `body read failed: ${(error as Error).message}`);
  } finally {
    clearTimeout(timer);
    raw.destroy();
  }
  return Buffer.concat(chunks);
}
