import { describe, expect, it } from 'vitest';
import {
  CRAWL_LIMITS,
  CrawlRequestError,
  parseCrawlLimits,
  parseCrawlRequest,
} from '../../functions/crawl/crawl-request';

describe('the one rule set for crawl inputs', () => {
  it('accepts whole numbers in range, as numbers or as command-line text', () => {
    expect(parseCrawlLimits({ maxPages: '20', maxDepth: '0' })).toEqual({ maxPages: 20, maxDepth: 0 });
    expect(parseCrawlLimits({ maxPages: 1, maxDepth: 100 })).toEqual({ maxPages: 1, maxDepth: 100 });
    expect(parseCrawlLimits({ maxPages: ' 7 ', maxDepth: 3 })).toEqual({ maxPages: 7, maxDepth: 3 });
    expect(parseCrawlLimits({ maxPages: CRAWL_LIMITS.maxPages.max, maxDepth: 0 }).maxPages).toBe(1_000_000);
  });

  it.each([
    ['abc', '--max-pages must be a whole number from 1 to 1000000, got "abc"'],
    ['-3', '--max-pages must be a whole number from 1 to 1000000, got "-3"'],
    ['0', '--max-pages must be a whole number from 1 to 1000000, got "0"'],
    ['2.5', '--max-pages must be a whole number from 1 to 1000000, got "2.5"'],
    ['1e3', '--max-pages must be a whole number from 1 to 1000000, got "1e3"'],
    ['', '--max-pages must be a whole number from 1 to 1000000, got ""'],
    ['1000001', '--max-pages must be a whole number from 1 to 1000000, got "1000001"'],
    [Number.NaN, '--max-pages must be a whole number from 1 to 1000000, got "NaN"'],
  ])('refuses --max-pages %j with the rule in one line', (value, message) => {
    expect(() => parseCrawlLimits({ maxPages: value, maxDepth: 1 })).toThrow(new CrawlRequestError(message));
  });

  it('refuses a depth outside 0..100', () => {
    expect(() => parseCrawlLimits({ maxPages: 5, maxDepth: 101 })).toThrow(
      '--max-depth must be a whole number from 0 to 100, got "101"',
    );
    expect(() => parseCrawlLimits({ maxPages: 5, maxDepth: -1 })).toThrow(CrawlRequestError);
  });

  it('canonicalises and deduplicates seeds, and scopes the crawl to their hosts unless told otherwise', () => {
    const r = parseCrawlRequest({
      seeds: ['HTTP://Example.com/a#x', 'http://example.com/a', 'https://b.example:8443/'],
      maxPages: '5',
      maxDepth: '2',
    });
    expect(r).toEqual({
      seeds: ['http://example.com/a', 'https://b.example:8443/'],
      maxPages: 5,
      maxDepth: 2,
      allowedHosts: ['example.com', 'b.example:8443'],
    });
    expect(
      parseCrawlRequest({
        seeds: ['http://a.example/'],
        maxPages: 1,
        maxDepth: 0,
        allowedHosts: [' x.example ', ''],
      }).allowedHosts,
    ).toEqual(['x.example']);
  });

  it('refuses no seed, a seed that is not a crawlable URL, fewer places than seeds, and an empty --allow', () => {
    expect(() => parseCrawlRequest({ seeds: [], maxPages: 1, maxDepth: 0 })).toThrow(
      'a crawl needs at least one seed URL',
    );
    expect(() => parseCrawlRequest({ seeds: ['not-a-url'], maxPages: 1, maxDepth: 0 })).toThrow(
      /^seed "not-a-url" is not a crawlable URL/,
    );
    expect(() => parseCrawlRequest({ seeds: ['file:///etc/passwd'], maxPages: 1, maxDepth: 0 })).toThrow(
      CrawlRequestError,
    );
    expect(() =>
      parseCrawlRequest({ seeds: ['http://a.example/', 'http://b.example/'], maxPages: 1, maxDepth: 0 }),
    ).toThrow('--max-pages (1) is below the number of seeds (2); raise it');
    expect(() =>
      parseCrawlRequest({ seeds: ['http://a.example/'], maxPages: 1, maxDepth: 0, allowedHosts: ['', ' '] }),
    ).toThrow('--allow needs at least one host[:port]');
  });
});
