import { randomUUID } from 'node:crypto';
import { CreateTableCommand, type DynamoDBClient, ScanCommand } from '@aws-sdk/client-dynamodb';
import type { Context } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createClients } from '../../functions/kit/clients';
import { type Emulators, LOCAL_CREDENTIALS, LOCAL_REGION, startEmulators } from '../../sandbox/emulators';

// The kit's idempotency helper (Powertools over the kit's shared DynamoDB client) on DynamoDB Local, with
// the table PipelineStack.addIdempotencyTable makes.
let emulators: Emulators;
let idempotent: typeof import('../../functions/kit/idempotency').idempotent;
const table = `idem-${randomUUID().slice(0, 8)}`;
let admin: DynamoDBClient;

beforeAll(async () => {
  emulators = await startEmulators();
  // The kit's clients read these on first use.
  Object.assign(process.env, {
    AWS_REGION: LOCAL_REGION,
    AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
    AWS_ENDPOINT_URL_DYNAMODB: emulators.dynamodbEndpoint,
  });
  ({ dynamodb: admin } = createClients({
    region: LOCAL_REGION,
    credentials: LOCAL_CREDENTIALS,
    endpoints: { dynamodb: emulators.dynamodbEndpoint },
  }));
  await admin.send(
    new CreateTableCommand({
      TableName: table,
      KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
      AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }],
      BillingMode: 'PAY_PER_REQUEST',
    }),
  );
  ({ idempotent } = await import('../../functions/kit/idempotency'));
});
afterAll(async () => {
  admin?.destroy();
  await emulators?.stop();
});

const context = { getRemainingTimeInMillis: () => 30_000 } as Context;

describe('kit idempotency helper', () => {
  it('runs a side effect once per key and replays its result to repeats', async () => {
    // Powertools takes the kit's shared client (a lazy proxy) as an SDK client, rather than warning and
    // making its own.
    const warn = vi.spyOn(console, 'warn');
    const sent: string[] = [];
    const sendEmail = idempotent(
      async (m: { eventId: string; userId: string; attempt: number }) => {
        sent.push(`${m.userId}#${m.attempt}`);
        return { messageId: `mail-${m.userId}-${m.attempt}` };
      },
      { tableName: table, expiresAfterSeconds: 3600, key: '[eventId, userId]' },
    );
    sendEmail.registerContext(context);
    expect(warn).not.toHaveBeenCalled();
    warn.mockRestore();
    const first = await sendEmail({ eventId: 'e1', userId: 'u1', attempt: 1 });
    // A repeat with the same key (a redelivery; the attempt number is not part of the key) replays the result.
    const again = await sendEmail({ eventId: 'e1', userId: 'u1', attempt: 2 });
    const other = await sendEmail({ eventId: 'e1', userId: 'u2', attempt: 1 });
    expect(first).toEqual({ messageId: 'mail-u1-1' });
    expect(again).toEqual(first);
    expect(other).toEqual({ messageId: 'mail-u2-1' });
    expect(sent).toEqual(['u1#1', 'u2#1']);
    // Its records are in the table the kit made for it, COMPLETED, with an expiry.
    const { Items = [] } = await admin.send(new ScanCommand({ TableName: table }));
    expect(Items).toHaveLength(2);
    for (const item of Items) {
      expect(item.status?.S).toBe('COMPLETED');
      expect(Number(item.expiration?.N)).toBeGreaterThan(Date.now() / 1000);
    }
  });

  it('lets a failed call run again on the retry', async () => {
    let calls = 0;
    const flaky = idempotent(
      async (m: { id: string }) => {
        calls++;
        if (calls === 1) throw new Error('provider down');
        return { ok: m.id };
      },
      { tableName: table, expiresAfterSeconds: 3600 },
    );
    flaky.registerContext(context);
    await expect(flaky({ id: 'x' })).rejects.toThrow('provider down');
    expect(await flaky({ id: 'x' })).toEqual({ ok: 'x' });
    expect(await flaky({ id: 'x' })).toEqual({ ok: 'x' });
    expect(calls).toBe(2);
  });
});
