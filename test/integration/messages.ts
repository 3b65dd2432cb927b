import { brotliCompressSync } from 'node:zlib';
import { parsePageMessage as build, type ParseMessage } from '../../functions/crawl/schemas';

/** A parse message for `url` carrying `html` inline, as the crawler would send it. */
export function parsePageMessage(
  crawlId: string,
  url: string,
  html: string,
  fetchedAt = Date.now(),
): ParseMessage {
  return build(crawlId, `test-${crawlId}`, {
    url,
    finalUrl: url,
    depth: 0,
    httpStatus: 200,
    contentType: 'text/html; charset=utf-8',
    fetchedAt,
    body: { kind: 'inline', encoding: 'br', data: brotliCompressSync(Buffer.from(html)).toString('base64') },
  });
}
