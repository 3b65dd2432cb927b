import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { BatchExecuteStatementCommand, DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import { meterClient, newCounts } from '../../sandbox/meter.mjs';

/**
 * A DynamoDB document client whose requests end at the build step, after the meter's initialize step: each
 * returns `output`, or throws `error`, without leaving the process.
 */
function cannedClient(answer: { output?: unknown; error?: Error }) {
  const client = DynamoDBDocumentClient.from(
    new DynamoDBClient({ region: 'us-east-1', credentials: { accessKeyId: 'a', secretAccessKey: 'b' } }),
  );
  client.middlewareStack.add(
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
