// The example stage's handler: a thin adapter over a pure core, with the shared batch helpers.
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { poisonToDlq, processStandardBatch } from '../../functions/kit/batch';
import { ddb } from '../../functions/kit/clients';
import { requireEnv } from '../../functions/kit/env';

const table = requireEnv('COUNTS_TABLE');
const dlqUrl = requireEnv('DLQ_URL');

/** The pure core: what gets the unit tests. */
export const countWords = (text: string): number => text.split(/\s+/).filter(Boolean).length;

async function handleRecord(record: SQSRecord): Promise<void> {
  const { url, text } = JSON.parse(record.body) as { url: string; text: string };
  // Same input, same item: a redelivery rewrites identical data, so no condition is needed here.
  await ddb.send(new PutCommand({ TableName: table, Item: { url, words: countWords(text) } }));
}

export const handler = (event: SQSEvent, context: Context): Promise<SQSBatchResponse> =>
  processStandardBatch(event, context, poisonToDlq(dlqUrl, handleRecord));
