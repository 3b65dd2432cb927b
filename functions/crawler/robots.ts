import robotsParser from 'robots-parser';
import { FetchOutcomeError, type FetchPolicy, safeFetch, TransientFetchError } from './safe-fetch';
import { BlockedAddressError, DnsError } from './ssrf';

/** What robots.txt allows for one origin and user agent. */
export interface RobotsRules {
  readonly isAllowed: (url: string) => boolean;
  /** Milliseconds between requests to this host; 0 when robots.txt sets none. */
  readonly crawlDelayMs: number;
  /** Why these rules apply: parsed, unavailable (4xx → allow all), unreachable (→ disallow all). */
  readonly source: 'parsed' | 'unavailable' | 'unreachable';
}

/**
 * robots.txt is parsed up to this size and the rest ignored, as RFC 9309 §2.5 allows (a crawler must
 * parse at least 500 KiB). The cut falls at the last line break before it, so no rule is half-read.
 */
export const ROBOTS_MAX_BYTES = 512 * 1024;
/** Crawl-delay values above this are clamped, so one robots.txt cannot park a host's messages forever. */
export const MAX_CRAWL_DELAY_MS = 30_000;

/**
 * The RFC 9309 decision from one robots.txt fetch:
 * - 2xx: follow the parsed rules for `userAgent`;
 * - 4xx (after redirects): "unavailable", crawl everything;
 * - 5xx, network failure or timeout: "unreachable", crawl nothing until it can be read.
 */
export function robotsDecision(
  robotsUrl: string,
  userAgent: string,
  result: { status: number; body: string } | 'unreachable',
): RobotsRules {
  if (result === 'unreachable' || result.status >= 500) {
    return { isAllowed: () => false, crawlDelayMs: 0, source: 'unreachable' };
  }
  if (result.status >= 400) return { isAllowed: () => true, crawlDelayMs: 0, source: 'unavailable' };
  const robots = robotsParser(robotsUrl, result.body);
  const delaySeconds = Number(robots.getCrawlDelay(userAgent) ?? 0);
  const matcher = compileRules(robots, userAgent);
  return {
    // robots-parser answers undefined for a URL of another origin; such a URL is never asked here.
    isAllowed: (url) => (matcher ? matcher(robotsPath(url)) : robots.isAllowed(url, userAgent) !== false),
    crawlDelayMs: Number.isFinite(delaySeconds)
      ? Math.min(Math.max(0, delaySeconds * 1000), MAX_CRAWL_DELAY_MS)
      : 0,
    source: 'parsed',
  };
}

interface ParsedRule {
  readonly pattern: string;
  readonly allow: boolean;
}

/**
 * A matcher over the parsed rules of our group, or undefined if robots-parser's internals are not the
 * ones this was written against (then its own matcher is used).
 *
 * Hand-written because robots-parser matches each rule in O(pattern × path) with no index, so a hostile
 * 512 KiB robots.txt of wildcard rules costs about 0.4 s of blocked event loop per URL checked. Here each
 * rule is split at its `*` once, and matched by finding its literal segments in order (leftmost first,
 * which is optimal for `*`), in O(path) per rule. The semantics are robots-parser's, and a property test
 * checks the two agree: a pattern matches a prefix of the path, `*` is any run, a final `$` anchors the
 * end, the longest pattern wins and an allow wins a tie.
 */
function compileRules(robots: unknown, userAgent: string): ((path: string) => boolean) | undefined {
  const all = (robots as { _rules?: Record<string, ParsedRule[]> })._rules;
  if (!all || typeof all !== 'object') return undefined;
  // robots-parser's group choice: the agent's product token, lowercased, without a version; else "*".
  const agent = userAgent.toLowerCase().split('/')[0]?.trim() ?? '';
  const rules = all[agent] ?? all['*'] ?? [];
  if (!Array.isArray(rules) || rules.some((r) => typeof r?.pattern !== 'string')) return undefined;
  const compiled = rules.map((r) => {
    const anchored = r.pattern.endsWith('$');
    const body = anchored ? r.pattern.slice(0, -1) : r.pattern;
    return { length: r.pattern.length, allow: r.allow, anchored, segments: body.split('*') };
  });
  return (path) => {
    let best: (typeof compiled)[number] | undefined;
    for (const rule of compiled) {
      if (best && rule.length < best.length) continue;
      if (best && rule.length === best.length && (best.allow || !rule.allow)) continue;
      if (segmentsMatch(rule.segments, rule.anchored, path)) best = rule;
    }
    return !best || best.allow;
  };
}

/** Whether `path` matches the pattern `segments.join('*')` (+ `$` when anchored), from the start. */
export function segmentsMatch(segments: readonly string[], anchored: boolean, path: string): boolean {
  const first = segments[0] ?? '';
  if (!path.startsWith(first)) return false;
  if (segments.length === 1) return !anchored || path.length === first.length;
  let pos = first.length;
  const last = segments.length - 1;
  for (let i = 1; i < last; i++) {
    const at = path.indexOf(segments[i] as string, pos);
    if (at < 0) return false;
    pos = at + (segments[i] as string).length;
  }
  const tail = segments[last] as string;
  if (!anchored) return path.indexOf(tail, pos) >= 0;
  return path.length - tail.length >= pos && path.endsWith(tail);
}

/** The path robots rules are matched against, spelt as robots-parser spells it (escapes uppercased). */
function robotsPath(url: string): string {
  const u = new URL(url);
  return (u.pathname + u.search).replace(/%[0-9a-fA-F]{2}/g, (m) => m.toUpperCase());
}

/** Fetch and decide robots.txt for an origin with the same SSRF-safe fetch as pages. */
export async function loadRobots(origin: string, policy: FetchPolicy): Promise<RobotsRules> {
  const robotsUrl = `${origin}/robots.txt`;
  try {
    const page = await safeFetch(robotsUrl, {
      ...policy,
      maxBodyBytes: ROBOTS_MAX_BYTES,
      truncateOversize: true,
      allowedContentTypes: undefined,
    });
    return robotsDecision(robotsUrl, policy.userAgent, {
      status: page.status,
      body: robotsText(page.body),
    });
  } catch (error) {
    if (error instanceof BlockedAddressError || error instanceof DnsError) throw error;
    // A resolver that did not answer says nothing about the host: retry the URL rather than disallow it.
    if (error instanceof TransientFetchError && error.reason === 'dns-error') throw error;
    if (
      error instanceof FetchOutcomeError &&
      error.status !== undefined &&
      error.status >= 400 &&
      error.status < 500
    ) {
      return robotsDecision(robotsUrl, policy.userAgent, { status: error.status, body: '' });
    }
    if (error instanceof TransientFetchError || error instanceof FetchOutcomeError) {
      return robotsDecision(robotsUrl, policy.userAgent, 'unreachable');
    }
    throw error;
  }
}

/** The text of a robots.txt body; a body cut at the size limit loses its unfinished last line. */
export function robotsText(body: Buffer): string {
  if (body.length < ROBOTS_MAX_BYTES) return body.toString('utf8');
  const lastBreak = Math.max(body.lastIndexOf(0x0a), body.lastIndexOf(0x0d));
  return body.subarray(0, lastBreak + 1).toString('utf8');
}

/** Per-origin robots rules kept across warm invocations, refreshed after `ttlMs`. */
export class RobotsCache {
  private readonly entries = new Map<string, { rules: RobotsRules; expires: number }>();
  constructor(
    private readonly ttlMs = 60 * 60 * 1000,
    private readonly maxEntries = 5_000,
  ) {}

  async get(origin: string, load: (origin: string) => Promise<RobotsRules>): Promise<RobotsRules> {
    const hit = this.entries.get(origin);
    if (hit && hit.expires > Date.now()) return hit.rules;
    const rules = await load(origin);
    // Unreachable is retried sooner than parsed rules, so a brief outage does not block a host for an hour.
    const ttl = rules.source === 'unreachable' ? Math.min(this.ttlMs, 60_000) : this.ttlMs;
    if (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value as string);
    this.entries.set(origin, { rules, expires: Date.now() + ttl });
    return rules;
  }
}
