import http from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import type { Readable, Transform } from 'node:stream';
import zlib from 'node:zlib';
import { encodedLimit, passedOutputLimit } from '../crawl/body';
import { canonicalizeUrl } from '../crawl/url';
import { settleBy } from '../kit/deadline';
import { FetchOutcomeError, parseRetryAfter, TransientFetchError } from './failures';
import {
  type AddressPolicy,
  DnsUnavailableError,
  type ResolvedTarget,
  type Resolver,
  resolveSafeTarget,
} from './ssrf';

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
  /**
   * Keep the first `maxBodyBytes` of a larger body instead of refusing it (robots.txt, RFC 9309 §2.5).
   * @default false
   */
  readonly truncateOversize?: boolean;
  /**
   * Reuse connections through this pool (see ConnectionPool); without one, every request opens its own
   * connection and closes it.
   */
  readonly connections?: ConnectionPool;
}

/**
 * Keep-alive connections for the fetches of one invocation: a host's URLs in a batch are fetched a few at a
 * time, and each new connection costs a TCP handshake and, for https, a TLS one, which is round trips of
 * waiting that Lambda bills. One agent per (scheme, host, port, checked address), so a connection is only
 * reused for the address that was checked for it: a later DNS answer gets a fresh, freshly checked one.
 * A connection goes back to the pool only after a complete 2xx body was read; any other ending (an error,
 * a redirect, a refused or oversized body, the deadline) destroys it. `closeAll` at the end of each
 * invocation: no socket outlives it into a frozen environment, where the server may close it unseen.
 */
export class ConnectionPool {
  private readonly agents = new Map<string, http.Agent>();

  constructor(
    private readonly maxAgents = 32,
    /** Connections to one host at once: as many as the crawler fetches from it side by side. */
    private readonly socketsPerAgent = 1,
  ) {}

  /**
   * The agent for a request to `url` at its checked `address`, or false (a connection of its own, closed
   * after it) when the pool is full of agents that all have a request in flight: an agent is only ever
   * evicted while idle, so eviction never cuts a fetch short.
   */
  agentFor(url: URL, address: string): http.Agent | false {
    const key = `${url.protocol}//${url.hostname}:${url.port}@${address}`;
    const found = this.agents.get(key);
    if (found) {
      // Most recently used last, so eviction takes the agent idle longest.
      this.agents.delete(key);
      this.agents.set(key, found);
      return found;
    }
    if (this.agents.size >= this.maxAgents) {
      const idle = [...this.agents].find(
        ([, agent]) => Object.keys(agent.sockets).length === 0 && Object.keys(agent.requests).length === 0,
      );
      if (!idle) return false;
      idle[1].destroy();
      this.agents.delete(idle[0]);
    }
    // A connection per fetch the crawler runs side by side on the host, kept for the host's next pages.
    const options = {
      keepAlive: true,
      maxSockets: this.socketsPerAgent,
      maxFreeSockets: this.socketsPerAgent,
    };
    const agent = url.protocol === 'https:' ? new https.Agent(options) : new http.Agent(options);
    this.agents.set(key, agent);
    return agent;
  }

  /** Close every pooled connection. */
  closeAll(): void {
    for (const agent of this.agents.values()) agent.destroy();
    this.agents.clear();
  }
}

export interface FetchedPage {
  readonly status: number;
  readonly finalUrl: string;
  readonly contentType: string;
  readonly body: Buffer;
  readonly redirects: readonly string[];
}

export { FetchOutcomeError, TransientFetchError } from './failures';

const REDIRECT = new Set([301, 302, 303, 307, 308]);

/** Something the fetch opened; destroyed when the fetch settles, whatever way it settles. */
type Closable = { destroy(error?: Error): void };
/** Which step the fetch is waiting on, so a deadline names it. */
type Progress = { phase: 'dns' | 'http' };

/**
 * GET a URL safely: http(s) only, every hop's addresses checked and the connection pinned to the checked
 * address, at most `maxRedirects` hops with loop detection, the content type checked before the body is
 * read, and the decoded size capped while streaming.
 *
 * One deadline covers DNS, connect, TLS, headers, redirects and body. It does not rely on the request
 * reporting its own end: whatever the server does (a 101 upgrade that detaches the socket, a body that
 * never ends, a resolver that never answers), the returned promise settles by the deadline, and every
 * socket and stream the fetch opened is destroyed before it settles.
 */
export async function safeFetch(rawUrl: string, policy: FetchPolicy): Promise<FetchedPage> {
  const deadline = Date.now() + policy.timeoutMs;
  const open = new Set<Closable>();
  const progress: Progress = { phase: 'dns' };
  try {
    return await settleBy(fetchHops(rawUrl, policy, deadline, open, progress), policy.timeoutMs, () =>
      // A deadline spent waiting on DNS is a DNS failure, so robots.txt does not read it as the host's.
      progress.phase === 'dns'
        ? new TransientFetchError('dns-error', `no DNS answer within ${policy.timeoutMs} ms`)
        : new TransientFetchError('timeout', `fetch did not finish within ${policy.timeoutMs} ms`),
    );
  } finally {
    for (const o of open) o.destroy();
  }
}

async function fetchHops(
  rawUrl: string,
  policy: FetchPolicy,
  deadline: number,
  open: Set<Closable>,
  progress: Progress,
): Promise<FetchedPage> {
  const maxRedirects = policy.maxRedirects ?? 5;
  const seen = new Set<string>();
  const redirects: string[] = [];
  let current = canonicalizeUrl(rawUrl);
  for (;;) {
    seen.add(current);
    const response = await requestOnce(new URL(current), policy, deadline, open, progress);
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
      throw new TransientFetchError(
        'http-error',
        `HTTP ${response.status} from ${current}`,
        response.status,
        parseRetryAfter(response.headers['retry-after']),
      );
    }
    if (response.status >= 300 || response.status < 200) {
      throw new FetchOutcomeError('http-error', `HTTP ${response.status} from ${current}`, response.status);
    }
    const contentType = String(response.headers['content-type'] ?? '');
    const mediaType = contentType.split(';')[0]?.trim().toLowerCase() ?? '';
    if (policy.allowedContentTypes && !policy.allowedContentTypes.includes(mediaType)) {
      throw new FetchOutcomeError(
        'not-html',
        `content type "${mediaType || '(none)'}" is not crawled`,
        response.status,
      );
    }
    const declared = Number(response.headers['content-length'] ?? Number.NaN);
    const encoding = String(response.headers['content-encoding'] ?? 'identity')
      .trim()
      .toLowerCase();
    if (encoding === 'identity' && declared > policy.maxBodyBytes && !policy.truncateOversize) {
      throw new FetchOutcomeError(
        'too-large',
        `declared ${declared} bytes, limit ${policy.maxBodyBytes}`,
        response.status,
      );
    }
    const decode = decoderFor(encoding, response.status);
    let body: Buffer;
    if (decode && !policy.truncateOversize) {
      // A page's encoded bytes are read whole (the cap, plus the room compressed bytes may need over it),
      // then decoded in one call that stops at the cap (decodeWhole).
      const encodedPolicy = { ...policy, maxBodyBytes: encodedLimit(policy.maxBodyBytes) };
      const encoded = await readCapped(
        response.stream,
        undefined,
        encoding,
        encodedPolicy,
        response.status,
        deadline,
      );
      body = decodeWhole(encoded, decode, encoding, policy.maxBodyBytes, response.status);
    } else {
      const stream = decode?.stream();
      if (stream) open.add(stream);
      body = await readCapped(response.stream, stream, encoding, policy, response.status, deadline);
    }
    return { status: response.status, finalUrl: current, contentType, body, redirects };
  }
}

interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  stream: http.IncomingMessage;
}

/** Errors of a pooled connection the server closed while it sat idle: the request never reached it. */
const STALE_CONNECTION = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED']);

async function requestOnce(
  url: URL,
  policy: FetchPolicy,
  deadline: number,
  open: Set<Closable>,
  progress: Progress,
  retriedStale = false,
): Promise<RawResponse> {
  let target: ResolvedTarget;
  progress.phase = 'dns';
  try {
    target = await resolveSafeTarget(url, policy, policy.resolver, deadline);
  } catch (error) {
    if (error instanceof DnsUnavailableError) throw new TransientFetchError('dns-error', error.message);
    throw error;
  }
  progress.phase = 'http';
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
    let answered = false;
    const req = client.request(
      url,
      {
        method: 'GET',
        agent: policy.connections?.agentFor(url, target.address) ?? false,
        lookup: pinned,
        timeout: remaining,
        headers: {
          'user-agent': policy.userAgent,
          accept: 'text/html,application/xhtml+xml;q=0.9,*/*;q=0.1',
          'accept-encoding': 'gzip, deflate, br',
        },
      },
      (res) => {
        answered = true;
        open.add(res);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, stream: res });
      },
    );
    open.add(req);
    // A 101 (or any upgrade) hands the socket to an 'upgrade' listener; without one Node destroys it and
    // the request never reports an end. A crawler never asked to switch protocols: that is an outcome.
    req.once('upgrade', (res: http.IncomingMessage, socket: Closable) => {
      socket.destroy();
      reject(
        new FetchOutcomeError(
          'http-error',
          `${url.host} answered ${res.statusCode} Switching Protocols`,
          101,
        ),
      );
    });
    req.once('timeout', () =>
      req.destroy(new TransientFetchError('timeout', `connection to ${url.host} timed out`)),
    );
    req.once('error', (error) => {
      // A reused connection that turns out closed is retried once on a new one (Node's advice for keep-alive).
      if (
        req.reusedSocket &&
        !retriedStale &&
        STALE_CONNECTION.has((error as { code?: string }).code ?? '')
      ) {
        resolve(requestOnce(url, policy, deadline, open, progress, true));
        return;
      }
      reject(
        error instanceof TransientFetchError
          ? error
          : new TransientFetchError('network-error', `${url.host}: ${error.message}`),
      );
    });
    // Closed with neither a response nor an error: settle anyway (a no-op if an error settled it first). Every
    // request closes, and after a response there is nothing to settle: building the error anyway (its stack
    // trace) took about 1% of the crawler's CPU.
    req.once('close', () => {
      if (answered) return;
      reject(
        new TransientFetchError('network-error', `${url.host} closed the connection without a response`),
      );
    });
    req.end();
  });
}

/** A content coding's decoders: whole and synchronous for a page, streaming where a body may be cut. */
interface Decoder {
  whole(input: Buffer, options: zlib.ZlibOptions & zlib.BrotliOptions): Buffer;
  stream(): zlib.Gunzip | zlib.Inflate | zlib.BrotliDecompress;
}

const gzip: Decoder = { whole: zlib.gunzipSync, stream: () => zlib.createGunzip() };
/** A Map, not an object: a server's "constructor" or "__proto__" must not find anything. */
const DECODERS = new Map<string, Decoder>([
  ['gzip', gzip],
  ['x-gzip', gzip],
  ['deflate', { whole: zlib.inflateSync, stream: () => zlib.createInflate() }],
  ['br', { whole: zlib.brotliDecompressSync, stream: () => zlib.createBrotliDecompress() }],
]);

function decoderFor(encoding: string, status: number): Decoder | undefined {
  if (encoding === 'identity' || encoding === '') return undefined;
  const decoder = DECODERS.get(encoding);
  if (decoder) return decoder;
  throw new FetchOutcomeError(
    'unsupported-encoding',
    `content-encoding "${encoding.slice(0, 100)}" is not supported`,
    status,
  );
}

/**
 * A page's encoded bytes decoded in one synchronous call that stops at the cap. Node's streaming decoders
 * hand every chunk to the thread pool and back; for Brotli that cost the crawler twice the CPU of the
 * synchronous call and most of its garbage collection (functions/crawl/body.ts), and gzip, what nearly
 * every site sends, goes the same way. A bomb is refused either way.
 */
function decodeWhole(
  encoded: Buffer,
  decoder: Decoder,
  encoding: string,
  maxBytes: number,
  status: number,
): Buffer {
  try {
    return decoder.whole(encoded, { maxOutputLength: maxBytes });
  } catch (error) {
    if (passedOutputLimit(error))
      throw new FetchOutcomeError('too-large', `body passed ${maxBytes} decoded bytes`, status);
    throw new FetchOutcomeError('bad-encoding', `body is not valid ${encoding}`, status);
  }
}

/**
 * Read the body, through a streaming decoder if one is given, and stop as soon as the size read passes
 * the cap: refused as too-large, or cut at the cap when the policy truncates (robots.txt). safeFetch
 * bounds it by its deadline and closes the streams.
 */
async function readCapped(
  raw: http.IncomingMessage,
  decoder: Transform | undefined,
  encoding: string,
  policy: FetchPolicy,
  status: number,
  deadline: number,
): Promise<Buffer> {
  const maxBytes = policy.maxBodyBytes;
  const stream: Readable = decoder ? raw.pipe(decoder) : raw;
  const chunks: Buffer[] = [];
  let size = 0;
  raw.once('error', (e) => stream.destroy(e));
  try {
    for await (const chunk of stream) {
      const buffer = chunk as Buffer;
      if (size + buffer.length > maxBytes) {
        if (!policy.truncateOversize)
          throw new FetchOutcomeError(
            'too-large',
            `body passed ${maxBytes} ${decoder ? 'decoded ' : ''}bytes`,
            status,
          );
        chunks.push(buffer.subarray(0, maxBytes - size));
        size = maxBytes;
        break;
      }
      size += buffer.length;
      chunks.push(buffer);
    }
  } catch (error) {
    if (error instanceof FetchOutcomeError || error instanceof TransientFetchError) throw error;
    if (decoder && (error as { code?: string }).code?.startsWith('Z_')) {
      throw new FetchOutcomeError('bad-encoding', `body is not valid ${encoding}`, status);
    }
    // The socket's idle timeout (set to the time left) destroys the response, which then reads as aborted:
    // past the deadline that is the fetch timing out, not the network failing.
    if (Date.now() >= deadline)
      throw new TransientFetchError('timeout', `body did not arrive within ${policy.timeoutMs} ms`);
    throw new TransientFetchError('network-error', `body read failed: ${(error as Error).message}`);
  }
  return Buffer.concat(chunks);
}
