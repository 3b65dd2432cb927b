import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { ddb } from '../shared/clients';
import type { ParseMessage } from '../shared/schemas';
import type { ExtractedPage } from './extract';

export type PageRecord = Record<string, unknown> & { crawlId: string; url: string; fetchedAt: number };

/** The stored form of a parsed page. Pure, so what gets stored is tested without DynamoDB. */
export function pageRecord(message: ParseMessage, page: ExtractedPage, charset: string): PageRecord {
  const p = message.payload;
  return {
    crawlId: message.crawlId,
    url: p.url,
    finalUrl: p.finalUrl,
    depth: p.depth,
    httpStatus: p.httpStatus,
    fetchedAt: p.fetchedAt,
    storedAt: new Date().toISOString(),
    charset,
    title: page.title,
    description: page.description,
    canonical: page.canonical,
    text: page.text,
    linkCount: page.links.length,
    correlationId: message.correlationId,
  };
}

/**
 * Store a page unless a record from the same or a newer fetch is already there. The condition makes a
 * redelivery, or an older fetch arriving late, a no-op: the managed form of a Redis idempotency key.
 */
export async function storePage(table: string, record: PageRecord): Promise<'stored' | 'duplicate'> {
  try {
    await ddb.send(
      new PutCommand({
        TableName: table,
        Item: record,
        ConditionExpression: 'attribute_not_exists(#url) OR fetchedAt < :fetchedAt',
        ExpressionAttributeNames: { '#url': 'url' },
        ExpressionAttributeValues: { ':fetchedAt': record.fetchedAt },
      }),
    );
    return 'stored';
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException) return 'duplicate';
    throw error;
  }
}
