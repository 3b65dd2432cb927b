import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { decompressBody, planHandOff } from '../../functions/crawl/body';
import { decodeHtml } from '../../functions/parser/charset';
import { collapsedPrefix, extractPage } from '../../functions/parser/extract';
import { filterLinks } from '../../functions/parser/links';
import {
  itemBytes,
  pageRecord,
  pageWrite,
  truncateUtf8,
  WRITE_UNIT_BYTES,
} from '../../functions/parser/store';

const fixture = (name: string) => readFileSync(path.join(import.meta.dirname, 'fixtures', name));

describe('extractPage', () => {
  it('extracts title, description, canonical, text and resolved links from a realistic page', () => {
    const page = extractPage(
      fixture('article.html').toString('utf8'),
      'https://news.example/2026/11/story?id=7',
    );
    expect(page.title).toBe('Queues & Partitions — a story');
    expect(page.description).toBe('How message groups replace partition keys.');
    expect(page.canonical).toBe('https://news.example/story/7');
    expect(page.text).toContain('Ordering is per message group.');
    expect(page.text).not.toContain('trackingCode');
    expect(page.links).toEqual([
      'https://cdn.example/assets/about',
      'https://cdn.example/contact',
      'https://news.example/other?a=1&b=2',
      'http://external.example/',
    ]);
    expect(page.invalidLinks).toBe(1);
  });

  it('survives malformed markup: unclosed tags, stray closers and attributes without quotes', () => {
    const html =
      '<html><head><title>Broken</title><body><p>one <a href=/a>A<a href="b">B</div></span><p>two <a href=\'/c\'>';
    const page = extractPage(html, 'http://m.example/dir/');
    expect(page.links).toEqual(['http://m.example/a', 'http://m.example/dir/b', 'http://m.example/c']);
  });

  it('ignores non-http links and deduplicates canonical duplicates', () => {
    const html =
      '<a href="mailto:x@y.z">m</a><a href="javascript:void(0)">j</a><a href="/x#1">1</a><a href="/x#2">2</a><a href="HTTP://D.EXAMPLE:80/x">3</a>';
    expect(extractPage(html, 'http://d.example/').links).toEqual(['http://d.example/x']);
  });

  it('honours meta robots nofollow', () => {
    expect(
      extractPage('<meta name="robots" content="noindex, nofollow"><a href="/a">a</a>', 'http://x.example/')
        .nofollow,
    ).toBe(true);
  });

  it('bounds text and link counts on a huge page', () => {
    const links = Array.from({ length: 5_000 }, (_, i) => `<a href="/p${i}">link ${i}</a>`).join('');
    const html = `<title>Huge</title><p>${'word '.repeat(200_000)}</p>${links}`;
    const page = extractPage(html, 'http://huge.example/', { maxTextChars: 1_000, maxLinks: 500 });
    expect(page.text.length).toBeLessThanOrEqual(1_000);
    expect(page.links).toHaveLength(500);
    expect(page.title).toBe('Huge');
  });
});

describe('decodeHtml', () => {
  it('decodes a windows-1252 page declared only in a meta tag', () => {
    // Built from bytes rather than read from a file, so no tool that copies the tree as text can change it.
    const page =
      '<html><head><meta http-equiv="Content-Type" content="text/html; charset=windows-1252">' +
      '<title>Caf\xe9 cr\xe8me \x96 na\xefve</title></head><body>ok</body></html>';
    const { text, charset } = decodeHtml(Buffer.from(page, 'latin1'), 'text/html');
    expect(charset).toBe('windows-1252');
    expect(extractPage(text, 'http://l.example/').title).toBe('Café crème – naïve');
  });

  it('prefers the Content-Type charset, and falls back to UTF-8 for an unknown label', () => {
    const utf8 = Buffer.from('<title>Ünïcode</title>', 'utf8');
    expect(decodeHtml(utf8, 'text/html; charset=UTF-8').text).toContain('Ünïcode');
    expect(decodeHtml(utf8, 'text/html; charset=x-made-up').charset).toBe('utf-8');
  });
});

describe('link filtering and storage decisions', () => {
  const job = { allowedHosts: ['a.example'], maxDepth: 2 };
  it('keeps in-scope links, drops the page itself, counts the rest', () => {
    const out = filterLinks(
      ['http://a.example/1', 'http://b.example/2', 'http://a.example/self'],
      'http://a.example/self',
      0,
      job,
    );
    expect(out).toEqual({ inScope: ['http://a.example/1'], outOfScope: 1, tooDeep: 0 });
  });

  it('follows no links from a page at max depth', () => {
    expect(filterLinks(['http://a.example/1'], 'http://a.example/', 2, job)).toEqual({
      inScope: [],
      outOfScope: 0,
      tooDeep: 1,
    });
  });

  it('sizes the page record to one DynamoDB write unit, trimming only the text excerpt', () => {
    const html = fixture('article.html')
      .toString('utf8')
      .replace('</body>', `<p>${'déjà vu '.repeat(200)}</p></body>`);
    const page = extractPage(html, 'https://news.example/s');
    const record = pageRecord(
      {
        type: 'parse.page',
        version: 1,
        crawlId: 'c1',
        correlationId: 'corr',
        sentAt: new Date().toISOString(),
        payload: {
          url: 'https://news.example/s',
          finalUrl: 'https://news.example/s',
          depth: 1,
          httpStatus: 200,
          contentType: 'text/html',
          fetchedAt: 1,
          body: { kind: 'inline', encoding: 'br', data: '' },
        },
      },
      page,
      'utf-8',
    );
    expect(record).toMatchObject({
      crawlId: 'c1',
      url: 'https://news.example/s',
      fetchedAt: 1,
      linkCount: 4,
    });
    expect(page.text.length).toBeGreaterThan(600);
    expect(itemBytes(record)).toBeLessThanOrEqual(WRITE_UNIT_BYTES);
    expect(itemBytes(record)).toBeGreaterThan(WRITE_UNIT_BYTES - 8);
    expect(page.text.startsWith(String(record.text))).toBe(true);
  });

  it('sizes the page and the URL record it is written on together to one write unit, claim included', () => {
    const html = `<title>T</title><p>${'déjà vu '.repeat(300)}</p>`;
    const url = 'https://news.example/long/path/to/a/story';
    const page = extractPage(html, url);
    const message = {
      type: 'parse.page' as const,
      version: 1 as const,
      crawlId: 'c1',
      correlationId: 'corr',
      sentAt: new Date().toISOString(),
      payload: {
        url,
        finalUrl: `${url}?from=redirect`,
        depth: 2,
        httpStatus: 200,
        contentType: 'text/html',
        fetchedAt: 1_700_000_000_000,
        discoveredFrom: `https://news.example/${'index/'.repeat(20)}`,
        body: { kind: 'inline' as const, encoding: 'br' as const, data: '' },
      },
    };
    const write = pageWrite(message, page, 'utf-8', 12_345, 3600);
    // The crawler's outcome and its completed idempotency record ride on the page's write.
    expect(write).toMatchObject({
      outcome: 'fetched',
      idemStatus: 'COMPLETED',
      bytes: 12_345,
      httpStatus: 200,
      depth: 2,
      finalUrl: `${url}?from=redirect`,
      fetchedAt: 1_700_000_000_000,
    });
    // The record as DynamoDB will hold it: the write plus the claim already there.
    const claim = { claimedBy: message.payload.discoveredFrom, discoveredAt: new Date().toISOString() };
    const whole = itemBytes({ ...write, ...claim });
    expect(whole).toBeLessThanOrEqual(WRITE_UNIT_BYTES);
    expect(whole).toBeGreaterThan(WRITE_UNIT_BYTES - 8);
    // A seed's claim names the crawl, and leaves the text more room than a long discovering URL does.
    const seed = pageWrite(
      { ...message, payload: { ...message.payload, discoveredFrom: undefined } },
      page,
      'utf-8',
      1,
      3600,
    );
    expect(String(seed.text).length).toBeGreaterThan(String(write.text).length);
    expect(
      itemBytes({ ...seed, claimedBy: 'seed:c1', discoveredAt: claim.discoveredAt }),
    ).toBeLessThanOrEqual(WRITE_UNIT_BYTES);
  });

  it('measures item size the way DynamoDB bills it and cuts UTF-8 text between code points', () => {
    expect(itemBytes({ a: 'xyz', bb: 12345, c: undefined })).toBe(1 + 3 + 2 + 4);
    expect(truncateUtf8('héllo', 2)).toBe('h');
    expect(truncateUtf8('héllo', 3)).toBe('hé');
    expect(truncateUtf8('😀😀', 5)).toBe('😀');
    expect(truncateUtf8('short', 100)).toBe('short');
  });
});

describe('body hand-off', () => {
  it('keeps a body whose compressed form fits in the message, and round-trips it', async () => {
    const body = fixture('article.html');
    const plan = planHandOff(body, 100_000);
    expect(plan.kind).toBe('attribute');
    expect(decompressBody(plan.compressed, 1024 * 1024).equals(body)).toBe(true);
  });

  it('sends a body that does not fit through S3', async () => {
    const random = randomBytes(50_000);
    const plan = planHandOff(random, 1_000);
    expect(plan.kind).toBe('s3');
  });
});

describe('extractPage on pathological HTML', () => {
  it('stops at the nesting limit on 650,000 unclosed inline tags, keeping what came before', () => {
    const html = `<title>Deep</title><a href="/before">x</a>${'<b>'.repeat(650_000)}<a href="/after">y</a>`;
    const page = extractPage(html, 'http://deep.example/');
    expect(page.cut).toBe('depth');
    expect(page.title).toBe('Deep');
    expect(page.links).toEqual(['http://deep.example/before']);
  });

  it('stops at the element limit on a flat flood of elements', () => {
    const html = `<a href="/first">x</a>${'<i></i>'.repeat(3_000)}<a href="/late">y</a>`;
    const page = extractPage(html, 'http://flat.example/', { maxElements: 1_000 });
    expect(page.cut).toBe('elements');
    expect(page.links).toEqual(['http://flat.example/first']);
  });

  // A budget already spent (-1 ms), so the check cannot pass within the same millisecond on a fast machine.
  it('stops at the time budget and says so', () => {
    const html = `<a href="/first">x</a>${'<i></i>'.repeat(300_000)}`;
    const page = extractPage(html, 'http://slow.example/', { maxParseMs: -1 });
    expect(page.cut).toBe('time');
    expect(page.links).toEqual(['http://slow.example/first']);
  });

  it('parses a normal page to the end without a cut', () => {
    const html = `<div>${'<p><a href="/x">x</a></p>'.repeat(2_000)}</div>`;
    expect(extractPage(html, 'http://ok.example/').cut).toBeUndefined();
  });

  it.each([
    ['a huge attribute value', `<a href="/ok" title="${'t'.repeat(1_500_000)}">x</a>`],
    ['a huge comment', `<!--${'-'.repeat(1_500_000)}<a href="/no">--><a href="/ok">x</a>`],
    ['an unterminated script', `<a href="/ok">x</a><script>${'var a=1;'.repeat(200_000)}`],
    [
      'thousands of attributes',
      `<a ${Array.from({ length: 50_000 }, (_, i) => `a${i}=1`).join(' ')} href="/ok">x</a>`,
    ],
    ['huge numeric entities', `<a href="/ok">${'&#99999999999;'.repeat(100_000)}</a>`],
    ['a giant title', `<title>${'T'.repeat(1_000_000)}</title><a href="/ok">x</a>`],
    ['deep nested tables', `${'<table><tr><td>'.repeat(50_000)}<a href="/ok">x</a>`],
  ])('extracts within its limits from %s', (_name, html) => {
    const page = extractPage(html, 'http://p.example/');
    expect((page.title ?? '').length).toBeLessThanOrEqual(300);
    expect(page.text.length).toBeLessThanOrEqual(1_000);
    if (!page.cut) expect(page.links).toContain('http://p.example/ok');
  });

  it('drops a link too long for a DynamoDB key as invalid and keeps its page-mates', () => {
    const long = `/${'x'.repeat(1_500)}`;
    const page = extractPage(`<a href="${long}">long</a><a href="/short">s</a>`, 'http://k.example/');
    expect(page.links).toEqual(['http://k.example/short']);
    expect(page.invalidLinks).toBe(1);
  });
});

describe('extractPage, exactly', () => {
  const at = 'http://e.example/dir/page';
  const x = (html: string, limits = {}) => extractPage(html, at, limits);

  it.each([
    'p',
    'div',
    'br',
    'li',
    'h1',
    'h2',
    'h3',
    'h4',
    'h5',
    'h6',
    'td',
    'th',
    'tr',
    'section',
    'article',
  ])('ends a block at </%s> with a space', (tag) => {
    expect(x(`<${tag}>one</${tag}>two`).text).toBe('one two');
  });

  it('joins inline elements without a space', () => {
    expect(x('<span>one</span>two<em>three</em>').text).toBe('onetwothree');
  });

  it.each(['script', 'style', 'noscript', 'template', 'svg', 'head'])(
    'leaves out the text inside <%s>',
    (tag) => {
      expect(x(`before<${tag}>hidden</${tag}>after`).text).toBe('beforeafter');
    },
  );

  it('keeps text outside tags, flushed at the end of the document', () => {
    expect(x('just text').text).toBe('just text');
  });

  it('takes the first title, decodes entities, and reads upper-case tags and attributes', () => {
    const page = x('lead<TITLE>One &amp; only</TITLE><title>Two</title><A HREF="/up">u</A>');
    expect(page.title).toBe('One & only');
    expect(page.text).toBe('leadu');
    expect(page.links).toEqual(['http://e.example/up']);
  });

  it('stops collecting a title that is whitespace past four times its kept length', () => {
    expect(x(`<title>${'&#32;'.repeat(1_300)}X</title>`).title).toBeUndefined();
  });

  it('takes the first meta description, trimmed and collapsed, and ignores other meta names', () => {
    const page = x(
      '<meta name="keywords" content="k"><meta name="Description" content="  a \n b "><meta name="description" content="second">',
    );
    expect(page.description).toBe('a b');
    expect(x('<meta name="description">').description).toBeUndefined();
  });

  it.each([
    ['nofollow', true],
    ['NOINDEX, NOFOLLOW', true],
    ['none', true],
    ['noindex', false],
    ['nofollowing', false],
  ])('reads meta robots "%s" as nofollow=%s', (content, expected) => {
    expect(x(`<meta name="robots" content="${content}">`).nofollow).toBe(expected);
  });

  it('reads nofollow only from meta robots', () => {
    expect(x('<meta name="googlebot-news" content="nofollow">').nofollow).toBe(false);
  });

  it('takes the first rel=canonical (in a rel list too), resolved against the base', () => {
    expect(x('<link rel="alternate canonical" href="../c"><link rel="canonical" href="/d">').canonical).toBe(
      'http://e.example/c',
    );
    expect(x('<link rel="canonicalish" href="/d">').canonical).toBeUndefined();
    expect(x('<link rel="canonical">').canonical).toBeUndefined();
    expect(x('<link rel="canonical" href="ftp://e.example/">').canonical).toBeUndefined();
  });

  it('resolves links against the first <base> that has an href', () => {
    const page = x(
      '<base target="_top"><base href="http://b.example/x/"><base href="http://c.example/"><a href="y">y</a>',
    );
    expect(page.links).toEqual(['http://b.example/x/y']);
  });

  it('collects <a> and <area> hrefs, skips non-web schemes silently and counts the unparseable', () => {
    const page = x(
      '<a name="anchor">n</a><area href="/map"><a href=" mailto:a@b"></a><a href="JavaScript:void(0)"></a>' +
        '<a href="tel:1"></a><a href="data:text/html,x"></a><a href="ftp://f.example/"></a><a href="">e</a><a href="/ok">ok</a>',
    );
    expect(page.links).toEqual(['http://e.example/map', 'http://e.example/ok']);
    expect(page.invalidLinks).toBe(2);
  });

  it('looks at no more than four times maxLinks raw links', () => {
    const html = `${'<a href="/same">s</a>'.repeat(8)}<a href="/ninth">n</a>`;
    expect(x(html, { maxLinks: 2 }).links).toEqual(['http://e.example/same']);
    expect(x(html, { maxLinks: 3 }).links).toEqual(['http://e.example/same', 'http://e.example/ninth']);
  });

  it('collects text up to twice the kept length before cutting it', () => {
    expect(x('<i>ab</i>'.repeat(20), { maxTextChars: 10 }).text).toBe('ababababab');
  });

  it('cuts at exactly one past the depth and element limits, not at them', () => {
    expect(x('<b><b><b>x</b></b></b>', { maxDepth: 3 }).cut).toBeUndefined();
    expect(x('<b><b><b><b>x</b></b></b></b>', { maxDepth: 3 }).cut).toBe('depth');
    const links = '<a href="/1"></a><a href="/2"></a><a href="/3"></a>';
    expect(x(links, { maxElements: 3 }).cut).toBeUndefined();
    const cut = x(links, { maxElements: 2 });
    expect(cut).toMatchObject({ cut: 'elements', links: ['http://e.example/1', 'http://e.example/2'] });
  });

  it('counts closed elements off the depth, so siblings never reach the limit', () => {
    expect(x('<b>x</b>'.repeat(50), { maxDepth: 2 }).cut).toBeUndefined();
  });

  it('checks the time budget between slices of a long document with few elements', () => {
    const page = x(`${'x'.repeat(200_000)}<a href="/late">l</a>`, { maxParseMs: -1 });
    expect(page.cut).toBe('time');
    expect(page.links).toEqual([]);
  });
});

describe('collapsedPrefix', () => {
  const naive = (s: string, max: number) => s.replace(/\s+/g, ' ').trim().slice(0, max);

  it('equals collapsing the whole string and cutting it, on strings made to hit every window edge', () => {
    // A seeded generator (mulberry32): words, runs of every kind of whitespace (long ones too, so runs
    // cross the window boundaries), leading and trailing space, and non-BMP characters.
    let seed = 20261204;
    const rand = () => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    const spaces = [' ', '\n', '\t', '\r\n', '\u00a0', '\u2003', '\u3000', '\ufeff'];
    const pieces = ['a', 'word', 'Ünïcode', '😀', 'x'.repeat(50)];
    let checked = 0;
    for (let n = 0; n < 400; n++) {
      let s = '';
      const target = Math.floor(rand() ** 2 * 30_000);
      while (s.length < target) {
        if (rand() < 0.5) s += pieces[Math.floor(rand() * pieces.length)];
        else {
          const run = rand() < 0.1 ? Math.floor(rand() * 5_000) : 1 + Math.floor(rand() * 3);
          s += (spaces[Math.floor(rand() * spaces.length)] as string).repeat(run);
        }
      }
      for (const max of [0, 1, 5, 300, 1_000, 4_000]) {
        expect(collapsedPrefix(s, max)).toBe(naive(s, max));
        checked++;
      }
    }
    expect(checked).toBe(2_400);
  });

  it("keeps a page's text when one text node is megabytes long", () => {
    const html = `<p>${' '.repeat(3_000)}${'word '.repeat(400_000)}</p>`;
    const page = extractPage(html, 'http://example.test/');
    expect(page.text).toBe('word '.repeat(200));
  });
});
