import { brotliCompressSync } from 'node:zlib';
import type { ParseMessage } from '../../functions/shared/schemas';

/** A parse message for `url` carrying `html` inline, as the crawler would send it. */
export function parsePageMessage(
  crawlId: string,
  url: string,
  html: string,
  fetchedAt = Date.now(),
): ParseMessage {
  return {
    type: 'parse.page',
    version: 1,
    crawlId,
    correlationId: `test-${crawlId}`,
    sentAt: new Date().toISOString(),
    payload: {
      url,
      finalUrl: url,
      depth: 0,
      httpStatus: 200,
      contentType: 'text/html; charset=utf-8',
      fetchedAt,
      body: {
        kind: 'inline',
        encoding: 'br',
        data: brotliCompressSync(Buffer.from(html)).toString('base64'),
      },
    },
  };
}
