import { z } from 'zod';
import { canonicalizeUrl, hostKey, InvalidUrlError } from './url';

/**
 * The one rule set for a crawl's inputs, used by `npm start`, the CLI's `submit` and `submitCrawl` alike,
 * so a value is accepted or refused the same way everywhere, with the same message, before anything starts.
 */
export const CRAWL_LIMITS = {
  maxPages: { min: 1, max: 1_000_000 },
  maxDepth: { min: 0, max: 100 },
} as const;

/** A crawl input that can never be accepted; its message is one line that names the value and the fix. */
export class CrawlRequestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CrawlRequestError';
  }
}

export interface CrawlRequestInput {
  readonly seeds: readonly string[];
  /** A number, or the text of a command-line value. */
  readonly maxPages: number | string;
  readonly maxDepth: number | string;
  /** host[:port] values in scope. @default the seeds' hosts */
  readonly allowedHosts?: readonly string[];
}

export interface CrawlRequest {
  /** Canonical, deduplicated. */
  readonly seeds: string[];
  readonly maxPages: number;
  readonly maxDepth: number;
  readonly allowedHosts: string[];
}

/** A whole number in range, from a number or from digits only ("3.5", "-3", "1e3" and "" are refused). */
const wholeNumber = (min: number, max: number) =>
  z
    .union([z.number(), z.string().trim().regex(/^\d+$/).transform(Number)])
    .pipe(z.number().int().min(min).max(max));

function limit(name: 'maxPages' | 'maxDepth', flag: string, value: number | string): number {
  const { min, max } = CRAWL_LIMITS[name];
  const parsed = wholeNumber(min, max).safeParse(value);
  if (!parsed.success)
    throw new CrawlRequestError(
      `${flag} must be a whole number from ${min} to ${max}, got "${String(value)}"`,
    );
  return parsed.data;
}

/** The limits alone (for `npm start`, whose demo seeds are known only once its site runs). */
export function parseCrawlLimits(input: Pick<CrawlRequestInput, 'maxPages' | 'maxDepth'>) {
  return {
    maxPages: limit('maxPages', '--max-pages', input.maxPages),
    maxDepth: limit('maxDepth', '--max-depth', input.maxDepth),
  };
}

/** Check and normalise a crawl request; throws CrawlRequestError with one line naming what is wrong. */
export function parseCrawlRequest(input: CrawlRequestInput): CrawlRequest {
  const { maxPages, maxDepth } = parseCrawlLimits(input);
  if (input.seeds.length === 0) throw new CrawlRequestError('a crawl needs at least one seed URL');
  const seeds: string[] = [];
  for (const seed of input.seeds) {
    try {
      seeds.push(canonicalizeUrl(seed));
    } catch (error) {
      if (error instanceof InvalidUrlError) throw new CrawlRequestError(`seed ${error.message}`);
      throw error;
    }
  }
  const unique = [...new Set(seeds)];
  if (unique.length > maxPages)
    throw new CrawlRequestError(
      `--max-pages (${maxPages}) is below the number of seeds (${unique.length}); raise it`,
    );
  const allowedHosts = [
    ...new Set(input.allowedHosts?.map((h) => h.trim()).filter(Boolean) ?? unique.map(hostKey)),
  ];
  if (allowedHosts.length === 0) throw new CrawlRequestError('--allow needs at least one host[:port]');
  return { seeds: unique, maxPages, maxDepth, allowedHosts };
}
