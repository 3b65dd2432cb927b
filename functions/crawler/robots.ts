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

/** robots.txt beyond this size is truncated, as RFC 9309 §2.5 permits (the RFC requires at least 500 KiB). */
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
  return {
    // robots-parser answers undefined for a URL of another origin; such a URL is never asked here.
    isAllowed: (url) => robots.isAllowed(url, userAgent) !== false,
    crawlDelayMs: Number.isFinite(delaySeconds)
      ? Math.min(Math.max(0, delaySeconds * 1000), MAX_CRAWL_DELAY_MS)
      : 0,
    source: 'parsed',
  };
}

/** Fetch and decide robots.txt for an origin with the same SSRF-safe fetch as pages. */
export async function loadRobots(origin: string, policy: FetchPolicy): Promise<RobotsRules> {
  const robotsUrl = `${origin}/robots.txt`;
  try {
    const page = await safeFetch(robotsUrl, {
      ...policy,
      maxBodyBytes: ROBOTS_MAX_BYTES,
      allowedContentTypes: undefined,
    });
    return robotsDecision(robotsUrl, policy.userAgent, {
      status: page.status,
      body: page.body.toString('utf8'),
    });
  } catch (error) {
    if (error instanceof BlockedAddressError || error instanceof DnsError) throw error;
    if (
      error instanceof FetchOutcomeError &&
      error.status !== undefined &&
      error.status >= 400 &&
      error.status < 500
    ) {
      return robotsDecision(robotsUrl, policy.userAgent, { status: error.status, body: '' });
    }
    if (error instanceof FetchOutcomeError && error.reason === 'too-large') {
      return robotsDecision(robotsUrl, policy.userAgent, 'unreachable');
    }
    if (error instanceof TransientFetchError || error instanceof FetchOutcomeError) {
      return robotsDecision(robotsUrl, policy.userAgent, 'unreachable');
    }
    throw error;
  }
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
