import { describe, expect, it } from 'vitest';
import {
  boundedUrlKey,
  canonicalizeUrl,
  frontierGroupId,
  hostKey,
  InvalidUrlError,
  urlHash,
} from '../../functions/crawl/url';

describe('canonicalizeUrl', () => {
  const cases: Array<[input: string, expected: string, base?: string]> = [
    ['http://example.com', 'http://example.com/'],
    ['HTTP://EXAMPLE.COM/', 'http://example.com/'],
    ['https://Example.COM/Path', 'https://example.com/Path'],
    ['http://example.com:80/', 'http://example.com/'],
    ['https://example.com:443/a', 'https://example.com/a'],
    ['http://example.com:8080/a', 'http://example.com:8080/a'],
    ['https://example.com:80/a', 'https://example.com:80/a'],
    ['http://example.com/a#frag', 'http://example.com/a'],
    ['http://example.com/#', 'http://example.com/'],
    ['http://example.com/?', 'http://example.com/'],
    ['http://example.com/?b=2&a=1', 'http://example.com/?a=1&b=2'],
    ['http://example.com/?a=2&a=1', 'http://example.com/?a=2&a=1'],
    ['http://example.com/?b=1&a=2&a=1', 'http://example.com/?a=2&a=1&b=1'],
    ['http://example.com/a/./b/../c', 'http://example.com/a/c'],
    ['http://example.com/../../a', 'http://example.com/a'],
    ['http://example.com/%7euser', 'http://example.com/~user'],
    ['http://example.com/a%2fb', 'http://example.com/a%2Fb'],
    ['http://example.com/%41%42', 'http://example.com/AB'],
    ['http://user:pass@example.com/', 'http://example.com/'],
    ['http://example.com./a', 'http://example.com/a'],
    ['http://bücher.example/', 'http://xn--bcher-kva.example/'],
    ['  http://example.com/trim  ', 'http://example.com/trim'],
    ['http://example.com/a b', 'http://example.com/a%20b'],
    ['/relative', 'http://example.com/relative', 'http://example.com/dir/page'],
    ['child', 'http://example.com/dir/child', 'http://example.com/dir/page'],
    ['../up', 'http://example.com/up', 'http://example.com/dir/page'],
    ['?q=1', 'http://example.com/dir/page?q=1', 'http://example.com/dir/page'],
    ['//other.example/x', 'https://other.example/x', 'https://example.com/'],
    ['#only-fragment', 'http://example.com/dir/page', 'http://example.com/dir/page'],
    ['http://0x7f.1/', 'http://127.0.0.1/'],
    ['http://2130706433/', 'http://127.0.0.1/'],
    ['http://[::FFFF:127.0.0.1]/', 'http://[::ffff:7f00:1]/'],
    ['http://example.com/?utm=a+b', 'http://example.com/?utm=a+b'],
    // Each part alone, so each is cleaned whatever else the URL holds.
    ['http://user@example.com/', 'http://example.com/'],
    ['http://:secret@example.com/', 'http://example.com/'],
    ['http://example.com/a?b=1#', 'http://example.com/a?b=1'],
    ['http://example.com/a?#f', 'http://example.com/a'],
    ['http://example.com/a?x=%7e&%7E=%2f', 'http://example.com/a?x=~&~=%2F'],
    ['http://example.com/%7e?b=2&a=1#f', 'http://example.com/~?a=1&b=2'],
    ['http://example.com./?', 'http://example.com/'],
  ];
  it.each(cases)('canonicalises %s', (input, expected, base) => {
    expect(canonicalizeUrl(input, base)).toBe(expected);
  });

  it('is idempotent on its own output', () => {
    for (const [input, , base] of cases) {
      const once = canonicalizeUrl(input, base);
      expect(canonicalizeUrl(once)).toBe(once);
    }
  });

  it.each([
    ['ftp://example.com/', /scheme ftp:/],
    ['javascript:alert(1)', /scheme javascript:/],
    ['file:///etc/passwd', /scheme file:/],
    ['mailto:a@example.com', /scheme mailto:/],
    ['not a url', /does not parse/],
    ['', /empty/],
    [`http://example.com/${'a'.repeat(1500)}`, /longer than 1024 characters once canonical/],
    [`http://example.com/${'a'.repeat(5000)}`, /longer than 4096 characters/],
    // Short input, long canonical form: every non-ASCII character becomes a 9-byte escape.
    [`http://example.com/${'é'.repeat(200)}`, /longer than 1024 characters once canonical/],
  ])('rejects %# with an InvalidUrlError', (input: string, message: RegExp) => {
    expect(() => canonicalizeUrl(input)).toThrow(InvalidUrlError);
    expect(() => canonicalizeUrl(input)).toThrow(message);
  });
});

describe('keys that must fit DynamoDB and SQS limits', () => {
  it('keeps every canonical URL within the 1,024-byte sort-key limit, up to the limit exactly', () => {
    const base = 'http://example.com/';
    const longest = `${base}${'a'.repeat(1024 - base.length)}`;
    expect(canonicalizeUrl(longest)).toBe(longest);
    expect(() => canonicalizeUrl(`${longest}a`)).toThrow(InvalidUrlError);
  });

  it('bounds the key of an invalid URL and keeps it unique', () => {
    expect(boundedUrlKey('not a url')).toBe('not a url');
    const a = boundedUrlKey(`x${'é'.repeat(2000)}`);
    const b = boundedUrlKey(`y${'é'.repeat(2000)}`);
    expect(Buffer.byteLength(a)).toBeLessThanOrEqual(1024);
    expect(a).not.toBe(b);
    expect(boundedUrlKey(`x${'é'.repeat(2000)}`)).toBe(a);
  });

  it('uses the host as the frontier group, and a digest of it when the host is too long for SQS', () => {
    expect(frontierGroupId('http://example.com:8080/a')).toBe('example.com:8080');
    const label = 'a'.repeat(63);
    const longHost = `${label}.${label}.${label}.example`;
    const id = frontierGroupId(`http://${longHost}/`);
    expect(id.length).toBeLessThanOrEqual(128);
    expect(id).toBe(frontierGroupId(`http://${longHost}/other`));
    expect(id).not.toBe(frontierGroupId(`http://b${longHost.slice(1)}/`));
  });
});

describe('hostKey and urlHash', () => {
  it('uses host[:port] as the message group so each host is one partition', () => {
    expect(hostKey('http://example.com/a')).toBe('example.com');
    expect(hostKey('http://127.0.0.1:4001/a')).toBe('127.0.0.1:4001');
  });

  it('gives a 64-hex dedup id that differs per crawl and per URL', () => {
    const a = urlHash('c1', 'http://example.com/');
    expect(a).toMatch(/^[0-9a-f]{64}$/);
    expect(urlHash('c1', 'http://example.com/')).toBe(a);
    expect(urlHash('c2', 'http://example.com/')).not.toBe(a);
    expect(urlHash('c1', 'http://example.com/x')).not.toBe(a);
  });
});

describe('canonicalizeUrl details', () => {
  it('trims, drops every trailing dot of the host, and keeps a query only when it has one', () => {
    expect(canonicalizeUrl('  http://Example.com../a?  ')).toBe('http://example.com/a');
    expect(canonicalizeUrl('http://example.com/a?b=1')).toBe('http://example.com/a?b=1');
  });

  it('accepts input up to four times the limit before canonicalising, and names the limits', () => {
    const padded = `http://example.com/${'./'.repeat(2_030)}x`;
    expect(padded.length).toBe(4_080);
    expect(canonicalizeUrl(padded)).toBe('http://example.com/x');
    expect(() => canonicalizeUrl(`http://example.com/${'./'.repeat(2_040)}x`)).toThrow(
      'longer than 4096 characters before canonicalisation',
    );
  });

  it('says what is wrong with the input, quoting at most 200 characters of it', () => {
    const error = (() => {
      try {
        canonicalizeUrl(`ftp://${'a'.repeat(300)}/`);
      } catch (e) {
        return e as InvalidUrlError;
      }
    })();
    expect(error?.name).toBe('InvalidUrlError');
    expect(error?.reason).toBe('invalid-url');
    expect(error?.message).toBe(
      `"ftp://${'a'.repeat(194)}" is not a crawlable URL: scheme ftp: is not http or https`,
    );
  });

  it('rejects a URL without a host', () => {
    expect(() => canonicalizeUrl('http://')).toThrow(InvalidUrlError);
  });

  it('bounds keys at exactly the limit', () => {
    const exact = 'k'.repeat(1_024);
    expect(boundedUrlKey(exact)).toBe(exact);
    const over = `${exact}k`;
    expect(boundedUrlKey(over)).toMatch(/^k{900}#sha256:[0-9a-f]{64}$/);
    const host128 = `${'h'.repeat(120)}.example`;
    expect(host128).toHaveLength(128);
    expect(frontierGroupId(`http://${host128}/`)).toBe(host128);
    expect(frontierGroupId(`http://h${host128}/`)).toMatch(/^host-sha256-[0-9a-f]{64}$/);
  });
});
