import type { CrawlJob } from '../crawl/crawl-record';
import { hostKey } from '../crawl/url';
import type { Outcome } from '../crawl/url-record';
import type { RobotsRules } from './robots';

export type FetchDecision =
  | { kind: 'fetch'; crawlDelayMs: number }
  | { kind: 'skip'; outcome: Outcome; detail: string };

/**
 * Whether a frontier URL may be fetched: the crawl exists, the URL is in scope and within depth, and
 * robots.txt allows it. The page budget is checked later, after a successful fetch.
 */
export function decideFetch(input: {
  url: string;
  depth: number;
  job: CrawlJob | undefined;
  robots: RobotsRules | undefined;
}): FetchDecision {
  const { url, depth, job, robots } = input;
  if (!job) return { kind: 'skip', outcome: 'unknown-crawl', detail: 'no crawl job with this crawlId' };
  const host = hostKey(url);
  if (!job.allowedHosts.includes(host)) {
    return {
      kind: 'skip',
      outcome: 'out-of-scope',
      detail: `${host} is not in ${job.allowedHosts.join(', ')}`,
    };
  }
  if (depth > job.maxDepth)
    return { kind: 'skip', outcome: 'too-deep', detail: `depth ${depth} > ${job.maxDepth}` };
  if (!robots?.isAllowed(url)) {
    return {
      kind: 'skip',
      outcome: 'skipped-robots',
      detail: `robots.txt (${robots?.source ?? 'missing'}) disallows it`,
    };
  }
  return { kind: 'fetch', crawlDelayMs: robots.crawlDelayMs };
}
