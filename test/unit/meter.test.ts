import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { ReceiveMessageCommand, SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { BatchExecuteStatementCommand, DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import { meterClient, newCounts } from '../../sandbox/meter.mjs';

/**
 * A DynamoDB document client whose requests end at the build step, after the meter's initialize step: each
 * returns `output`, or throws `error`, without leaving the process.
 */
const credentials = { accessKeyId: 'a', secretAccessKey: 'b' };

function cannedClient<C extends DynamoDBDocumentClient | SQSClient = DynamoDBDocumentClient>(
  answer: { output?: unknown; error?: Error },
  client: C = DynamoDBDocumentClient.from(new DynamoDBClient({ region: 'us-east-1', credentials })) as C,
): C {
  (client.middlewareStack as DynamoDBDocumentClient['middlewareStack']).add(
    // The canned output stands in for a deserialized response, which the SDK's types cannot know.
    (() => async () => {
      if (answer.error) throw answer.error;
      return { output: answer.output, response: {} };
    }) as never,
    { step: 'build', name: 'cannedAnswer' },
  );
  return client;
}

const statements = [
  { Statement: 'UPDATE "t" SET "a" = ? WHERE "k" = ?', Parameters: [1, 'x'] },
  { Statement: 'INSERT INTO "t" VALUE {\'k\': ?}', Parameters: ['y'] },
  { Statement: ' select * FROM "t" WHERE "k" = ?', Parameters: ['z'] },
];

describe('the bench meter on BatchExecuteStatement', () => {
  it('bills each write statement a write unit and each SELECT a read unit, under separate keys', async () => {
    const counts = newCounts();
    const client = cannedClient({ output: { Responses: [{}, { Error: { Code: 'DuplicateItem' } }, {}] } });
    meterClient(client, counts);
    await client.send(new BatchExecuteStatementCommand({ Statements: statements }));
    expect(counts).toEqual({
      'DynamoDB.BatchExecuteStatement (write)': { requests: 1, units: 2 },
      'DynamoDB.BatchExecuteStatement (read)': { requests: 1, units: 1 },
    });
  });

  it('bills the statements of a request that failed as a whole too', async () => {
    const counts = newCounts();
    const client = cannedClient({ error: new Error('ValidationException') });
    meterClient(client, counts);
    await expect(
      client.send(new BatchExecuteStatementCommand({ Statements: statements.slice(0, 2) })),
    ).rejects.toThrow('ValidationException');
    expect(counts).toEqual({ 'DynamoDB.BatchExecuteStatement (write)': { requests: 1, units: 2 } });
  });
});

/** The canned receive carries no MD5s to check. */
const sqsClient = () => new SQSClient({ region: 'us-east-1', credentials, md5: false });

describe('the bench meter on SQS payloads', () => {
  const queue = 'https://sqs.us-east-1.amazonaws.com/1/parse';
  // 40,000 raw bytes: 53,336 as base64. Three of them are 120,000 bytes raw: two 64 KiB chunks, not three.
  const binary = new Uint8Array(40_000);
  const attributes = { body: { DataType: 'Binary', BinaryValue: binary } };

  it('bills a batch by its bodies and attributes, a binary value at its raw size', async () => {
    const counts = newCounts();
    const client = cannedClient({ output: {} }, sqsClient());
    meterClient(client, counts);
    const entries = [0, 1, 2].map((i) => ({
      Id: String(i),
      MessageBody: '{}',
      MessageAttributes: attributes,
    }));
    await client.send(new SendMessageBatchCommand({ QueueUrl: queue, Entries: entries }));
    expect(counts).toEqual({ 'SQS.SendMessageBatch (standard)': { requests: 1, units: 2 } });
  });

  it('bills a receive by the bodies and attributes it returned', async () => {
    const counts = newCounts();
    const message = { Body: 'x'.repeat(30_000), MessageAttributes: attributes };
    const client = cannedClient({ output: { Messages: [message, message] } }, sqsClient());
    meterClient(client, counts);
    await client.send(new ReceiveMessageCommand({ QueueUrl: queue }));
    // 2 × (30,000 + 4 + 6 + 40,000) bytes: 140,020, three chunks; without the attributes it would be one.
    expect(counts).toEqual({ 'SQS.ReceiveMessage (standard)': { requests: 1, units: 3 } });
  });
});
