import { TextDecoder } from 'node:util';

/**
 * Decode an HTML body to text using, in order: a BOM, the Content-Type charset, a <meta charset> or
 * http-equiv declaration in the first 1024 bytes, then UTF-8 (the WHATWG encoding sniffing order, simplified).
 * An unknown label falls back to UTF-8, with replacement characters for bytes that do not decode.
 */
export function decodeHtml(body: Buffer, contentType: string): { text: string; charset: string } {
  const label = bomCharset(body) ?? headerCharset(contentType) ?? metaCharset(body) ?? 'utf-8';
  let decoder: TextDecoder;
  try {
    decoder = new TextDecoder(label);
  } catch {
    decoder = new TextDecoder('utf-8');
  }
  const text = decoder.decode(body);
  return { text: decoder.encoding === 'windows-1252' ? fixC1(text) : text, charset: decoder.encoding };
}

// Node before 22 decodes windows-1252 as latin1, leaving 0x80-0x9F as C1 controls; map them as the spec does.
const CP1252_C1 = '€\u0081‚ƒ„…†‡ˆ‰Š‹Œ\u008DŽ\u008F\u0090‘’“”•–—˜™š›œ\u009DžŸ';
const latin1Bug = new TextDecoder('windows-1252').decode(Uint8Array.of(0x96)) !== '\u2013';
function fixC1(text: string): string {
  return latin1Bug ? text.replace(/[\u0080-\u009F]/g, (c) => CP1252_C1[c.charCodeAt(0) - 0x80] ?? c) : text;
}

function bomCharset(body: Buffer): string | undefined {
  if (body[0] === 0xef && body[1] === 0xbb && body[2] === 0xbf) return 'utf-8';
  if (body[0] === 0xfe && body[1] === 0xff) return 'utf-16be';
  if (body[0] === 0xff && body[1] === 0xfe) return 'utf-16le';
  return undefined;
}

function headerCharset(contentType: string): string | undefined {
  return /charset\s*=\s*["']?([\w.:-]+)/i.exec(contentType)?.[1]?.toLowerCase();
}

function metaCharset(body: Buffer): string | undefined {
  const head = body.subarray(0, 1024).toString('latin1');
  // Matches both <meta charset="x"> and <meta http-equiv="Content-Type" content="text/html; charset=x">.
  return /<meta[^>]+charset\s*=\s*["']?([\w.:-]+)/i.exec(head)?.[1]?.toLowerCase();
}
