import { describe, expect, it } from 'vitest';
import { decodeHtml } from '../../functions/parser/charset';

describe('decodeHtml (WHATWG sniffing order)', () => {
  const cafe = 'café';
  it('uses a BOM over the Content-Type and the meta tag', () => {
    const body = Buffer.concat([
      Buffer.from([0xff, 0xfe]),
      Buffer.from(`<meta charset="utf-8">${cafe}`, 'utf16le'),
    ]);
    expect(decodeHtml(body, 'text/html; charset=iso-8859-1')).toMatchObject({ charset: 'utf-16le' });
    expect(decodeHtml(body, 'text/html').text).toContain(cafe);
    const be = Buffer.concat([Buffer.from([0xfe, 0xff]), Buffer.from(cafe, 'utf16le').swap16()]);
    expect(decodeHtml(be, '')).toEqual({ text: cafe, charset: 'utf-16be' });
    const utf8 = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(cafe)]);
    expect(decodeHtml(utf8, 'text/html; charset=windows-1252')).toEqual({ text: cafe, charset: 'utf-8' });
  });

  it('uses the Content-Type charset over a meta tag', () => {
    const body = Buffer.from(`<meta charset="utf-8">caf\xe9`, 'latin1');
    expect(decodeHtml(body, 'text/html; charset="ISO-8859-1"')).toMatchObject({ charset: 'windows-1252' });
    expect(decodeHtml(body, 'text/html; charset="ISO-8859-1"').text).toContain(cafe);
  });

  it('reads <meta charset> and http-equiv declarations in the first 1024 bytes only', () => {
    expect(decodeHtml(Buffer.from('<meta charset=windows-1252>\x96', 'latin1'), 'text/html').text).toContain(
      '–',
    );
    const equiv = '<meta http-equiv="Content-Type" content="text/html; charset=koi8-r">\xc1';
    expect(decodeHtml(Buffer.from(equiv, 'latin1'), 'text/html').charset).toBe('koi8-r');
    const late = `${' '.repeat(1100)}<meta charset="windows-1252">`;
    expect(decodeHtml(Buffer.from(late), 'text/html').charset).toBe('utf-8');
  });

  it('falls back to UTF-8 for an unknown label or none, replacing bytes that do not decode', () => {
    expect(decodeHtml(Buffer.from(cafe), 'text/html; charset=no-such-charset')).toEqual({
      text: cafe,
      charset: 'utf-8',
    });
    expect(decodeHtml(Buffer.from([0x61, 0xff, 0x62]), '').text).toBe('a\ufffdb');
  });

  it('maps windows-1252 bytes 0x80-0x9F to their characters, not C1 controls', () => {
    const body = Buffer.from([0x80, 0x93, 0x94, 0x99]);
    expect(decodeHtml(body, 'text/html; charset=windows-1252').text).toBe('€“”™');
  });

  it.each([
    [[0xef, 0xbb, 0x41]],
    [[0xef, 0x41, 0xbf]],
    [[0x41, 0xbb, 0xbf]],
    [[0xfe, 0x41]],
    [[0x41, 0xff]],
    [[0xff, 0x41]],
    [[0x41, 0xfe]],
  ])('does not take the near-BOM bytes %j for a BOM', (bytes) => {
    expect(decodeHtml(Buffer.from(bytes), 'text/html; charset=windows-1252').charset).toBe('windows-1252');
  });

  it('reads a charset parameter with spaces around the equals sign, in the header and in a meta tag', () => {
    expect(decodeHtml(Buffer.from('x'), 'text/html; charset = koi8-r').charset).toBe('koi8-r');
    expect(decodeHtml(Buffer.from('<meta charset = "koi8-r">'), 'text/html').charset).toBe('koi8-r');
  });
});
