import { brotliCompressSync } from 'node:zlib';
import type { MessageAttributeValue } from '@aws-sdk/client-sqs';
import {
  BODY_ATTRIBUTE,
  type BodyRef,
  parsePageMessage as build,
  type ParseMessage,
} from '../../functions/crawl/schemas';

function message(crawlId: string, url: string, body: BodyRef, fetchedAt: number): ParseMessage {
  return build(crawlId, `test-${crawlId}`, {
    url,
    finalUrl: url,
    depth: 0,
    httpStatus: 200,
    contentType: 'text/html; charset=utf-8',
    fetchedAt,
    body,
  });
}

/** A parse message for `url` carrying `html` inline as base64, as crawlers before the body attribute sent it. */
export function parsePageMessage(
  crawlId: string,
  url: string,
  html: string,
  fetchedAt = Date.now(),
): ParseMessage {
  const data = brotliCompressSync(Buffer.from(html)).toString('base64');
  return message(crawlId, url, { kind: 'inline', encoding: 'br', data }, fetchedAt);
}

/** A parse message for `url` with `html` in its binary body attribute, as the crawler sends it: body and attributes. */
export function parsePageEntry(
  crawlId: string,
  url: string,
  html: string,
  fetchedAt = Date.now(),
): { MessageBody: string; MessageAttributes: Record<string, MessageAttributeValue> } {
  return {
    MessageBody: JSON.stringify(message(crawlId, url, { kind: 'attribute', encoding: 'br' }, fetchedAt)),
    MessageAttributes: {
      [BODY_ATTRIBUTE]: { DataType: 'Binary', BinaryValue: brotliCompressSync(Buffer.from(html)) },
    },
  };
}
