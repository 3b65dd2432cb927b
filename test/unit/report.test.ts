import { describe, expect, it } from 'vitest';
import { whyNothingStored } from '../../sandbox/report';

describe('npm start when a crawl stores nothing', () => {
  it('says the seeds did not resolve, and what to do offline', () => {
    expect(whyNothingStored(new Map([['dns-error', 1]]))).toBe(
      'no page stored: the seeds could not be resolved (dns-error); is this machine offline? Without internet, run `npm start` with no URL to crawl the bundled demo site.',
    );
  });

  it('says robots.txt refused the seeds', () => {
    expect(whyNothingStored(new Map([['skipped-robots', 2]]))).toBe(
      'no page stored: robots.txt disallows the seeds for this crawler.',
    );
  });

  it('lists mixed outcomes, or none', () => {
    expect(
      whyNothingStored(
        new Map([
          ['dns-error', 1],
          ['http-error', 2],
        ]),
      ),
    ).toBe(
      "no page stored (outcomes: dns-error 1, http-error 2); see the function logs for each URL's detail.",
    );
    expect(whyNothingStored(new Map())).toBe(
      "no page stored (outcomes: none); see the function logs for each URL's detail.",
    );
  });
});
