import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CreateTableCommand, DeleteTableCommand, DescribeTableCommand } from '@aws-sdk/client-dynamodb';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { SQSRecord } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { entryHash, entryMessage } from '../../functions/gift/messages';
import { countNotifications, listGrants, openEvent, stockLeft } from '../../functions/gift/records';
import { submitEntry } from '../../functions/gift/submission';
import { createClients } from '../../functions/kit/clients';
import { PROJECT_ROOT, type Sandbox, startSandbox } from '../../sandbox/sandbox';
import { peekDlq, redrive, stackStatus, waitFor, waitForIdle } from '../../tooling/queues';
import type { SandboxFile } from '../../tooling/sandbox-file';

// The gift pipeline (lib/stacks/gift-stack.ts) on the same sandbox, CLI and queue tooling as the crawler,
// against fauxqs and DynamoDB Local: no mock stands in for a queue or a table.
const OUTPUTS = [
  'EntriesQueueUrl',
  'NotifyQueueUrl',
  'NotifyDlqUrl',
  'StockTableName',
  'GrantsTableName',
  'NotificationsTableName',
] as const;
let sb: Sandbox<(typeof OUTPUTS)[number]>;
let issue: typeof import('../../functions/gift/issue').issue;

beforeAll(async () => {
  sb = await startSandbox({ stackName: 'Gift-dev', outputs: OUTPUTS, retryDelaySeconds: 1 });
  // The issue function in this process too, for deliveries the test makes itself (concurrent, or failing).
  Object.assign(process.env, sb.functionEnvironment('EntriesConsumer'), { POWERTOOLS_LOG_LEVEL: 'WARN' });
  ({ issue } = await import('../../functions/gift/issue'));
});
afterAll(async () => {
  await sb?.stop();
});

const o = () => sb.target.outputs;
const newEvent = async (stock: number) => {
  const eventId = `ev-${randomUUID().slice(0, 8)}`;
  await openEvent(sb.target.ddb, o().StockTableName, eventId, stock);
  return eventId;
};
const grantsOf = (eventId: string) => listGrants(sb.target.ddb, o().GrantsTableName, eventId);
const couponsOf = async (eventId: string) => (await grantsOf(eventId)).filter((g) => g.decision === 'coupon');
const notified = async (eventId: string) =>
  countNotifications(
    sb.target.ddb,
    o().NotificationsTableName,
    (await couponsOf(eventId)).map((g) => g.couponId ?? ''),
  );
/**
 * Notifications the notify function sent for an event: its "coupon notification" log records with result
 * "notified", from the sandbox's function log. What a user would receive, as opposed to the records kept.
 */
const sent = (eventId: string): number =>
  readFileSync(sb.logFile, 'utf8')
    .split('\n')
    .filter((l) => l.includes(eventId) && l.includes('"coupon notification"'))
    .map((l) => JSON.parse(l) as { result?: string })
    .filter((r) => r.result === 'notified').length;
/** An SQS record as the event source mapping would hand the issue function this entry. */
const record = (eventId: string, userId: string, receive = 1): SQSRecord =>
  ({
    messageId: randomUUID(),
    body: JSON.stringify(entryMessage(eventId, userId, { q1: 'yes' }, `test-${eventId}`)),
    attributes: { ApproximateReceiveCount: String(receive), MessageGroupId: userId },
    eventSourceARN: 'arn:aws:sqs:us-east-1:000000000000:entries.fifo',
  }) as unknown as SQSRecord;

describe('gift event: first come, one coupon per user, no oversell', () => {
  it('gives 50 submissions against 20 coupons exactly 20 coupons, 30 sold-out outcomes and 20 notifications', async () => {
    const eventId = await newEvent(20);
    const users = Array.from({ length: 50 }, (_, i) => `u${i}`);
    await Promise.all(
      users.map((userId) =>
        submitEntry(sb.target.sqs, o().EntriesQueueUrl, { eventId, userId, answers: { q1: 'a' } }),
      ),
    );
    await waitForIdle(sb.target, 90_000);
    const grants = await grantsOf(eventId);
    expect(grants).toHaveLength(50);
    expect(new Set(grants.map((g) => g.userId)).size).toBe(50);
    const coupons = grants.filter((g) => g.decision === 'coupon');
    expect(coupons).toHaveLength(20);
    expect(grants.filter((g) => g.decision === 'sold-out')).toHaveLength(30);
    expect(new Set(coupons.map((g) => g.couponId)).size).toBe(20);
    expect(await stockLeft(sb.target.ddb, o().StockTableName, eventId)).toBe(0);
    await waitFor('20 notifications', async () => (await notified(eventId)) === 20 && sent(eventId) === 20);
  });

  it('gives a user one coupon when the same entry is delivered twice (past the queue’s dedup window)', async () => {
    const eventId = await newEvent(5);
    const body = JSON.stringify(entryMessage(eventId, 'dup-user', { q1: 'a' }, 'c1'));
    // Two sends with different dedup ids: the queue cannot drop the second, so the issue stage must.
    for (const dedup of ['first', 'second'])
      await sb.target.sqs.send(
        new SendMessageCommand({
          QueueUrl: o().EntriesQueueUrl,
          MessageBody: body,
          MessageGroupId: 'dup-user',
          MessageDeduplicationId: dedup,
        }),
      );
    await waitForIdle(sb.target, 60_000);
    expect(await couponsOf(eventId)).toHaveLength(1);
    expect(await stockLeft(sb.target.ddb, o().StockTableName, eventId)).toBe(4);
    await waitFor('the notification', async () => (await notified(eventId)) === 1);
    // The resent coupon message was absorbed by the notify stage's claim: still one notification.
    await waitForIdle(sb.target, 60_000);
    expect(await notified(eventId)).toBe(1);
    await waitFor('the notification to be logged', async () => sent(eventId) === 1);
    await waitForIdle(sb.target, 60_000);
    expect(sent(eventId)).toBe(1);
  });

  it('gives one coupon to five concurrent deliveries of one message, retrying those that conflicted', async () => {
    const eventId = await newEvent(3);
    let results = await Promise.allSettled(Array.from({ length: 5 }, () => issue(record(eventId, 'racer'))));
    // A delivery cancelled by another's transaction throws (SQS would redeliver it): redeliver until all are done.
    for (let round = 0; results.some((r) => r.status === 'rejected'); round++) {
      expect(round).toBeLessThan(10);
      results = await Promise.allSettled(
        results.map((r) =>
          r.status === 'rejected' ? issue(record(eventId, 'racer', 2)) : Promise.resolve(r.value),
        ),
      );
    }
    const done = results.map((r) => (r.status === 'fulfilled' ? r.value : undefined));
    expect(done.every((r) => r?.decision === 'coupon')).toBe(true);
    expect(done.filter((r) => r?.first)).toHaveLength(1);
    expect(await couponsOf(eventId)).toHaveLength(1);
    expect(await stockLeft(sb.target.ddb, o().StockTableName, eventId)).toBe(2);
  });

  it('never grants past the stock when more users race for it than there are coupons', async () => {
    const eventId = await newEvent(4);
    const racers = Array.from({ length: 12 }, (_, i) => `r${i}`);
    let pending = racers;
    for (let round = 0; pending.length > 0; round++) {
      expect(round).toBeLessThan(20);
      const settled = await Promise.allSettled(pending.map((u) => issue(record(eventId, u, round + 1))));
      pending = pending.filter((_, i) => settled[i]?.status === 'rejected');
    }
    const grants = await grantsOf(eventId);
    expect(grants.filter((g) => g.decision === 'coupon')).toHaveLength(4);
    expect(grants.filter((g) => g.decision === 'sold-out')).toHaveLength(8);
    expect(await stockLeft(sb.target.ddb, o().StockTableName, eventId)).toBe(0);
  });

  it('survives a crash between the grant and the notify send: the redelivery sends it, nothing is granted twice', async () => {
    const eventId = await newEvent(2);
    const send = SQSClient.prototype.send;
    // Only the coupon send to the notify queue fails: the sandbox's own pollers share this process and its
    // SQSClient class, and must not take the fault instead.
    let died = 0;
    const spy = vi.spyOn(SQSClient.prototype, 'send').mockImplementation(function (
      this: SQSClient,
      ...args: Parameters<SQSClient['send']>
    ) {
      const [command] = args as unknown as [{ input?: { QueueUrl?: string } }];
      if (
        died === 0 &&
        command instanceof SendMessageCommand &&
        command.input.QueueUrl === o().NotifyQueueUrl
      ) {
        died++;
        return Promise.reject(new Error('process died before the send'));
      }
      return (send as (...a: unknown[]) => Promise<unknown>).apply(this, args);
    } as SQSClient['send']);
    await expect(issue(record(eventId, 'crasher'))).rejects.toThrow('process died');
    spy.mockRestore();
    expect(died).toBe(1);
    expect(SQSClient.prototype.send).toBe(send);
    expect(await couponsOf(eventId)).toHaveLength(1);
    expect(await notified(eventId)).toBe(0);
    // The redelivery finds the grant, takes no stock, and sends the coupon on.
    expect(await issue(record(eventId, 'crasher', 2))).toEqual({ decision: 'coupon', first: false });
    expect(await stockLeft(sb.target.ddb, o().StockTableName, eventId)).toBe(1);
    await waitFor('the notification', async () => (await notified(eventId)) === 1 && sent(eventId) === 1);
  });

  it('records an entry for an event never opened as unknown-event, and sends a malformed entry to the DLQ alone', async () => {
    const eventId = `never-${randomUUID().slice(0, 8)}`;
    await submitEntry(sb.target.sqs, o().EntriesQueueUrl, { eventId, userId: 'lost', answers: {} });
    await sb.target.sqs.send(
      new SendMessageCommand({
        QueueUrl: o().EntriesQueueUrl,
        MessageBody: JSON.stringify({ type: 'gift.entry', version: 1, eventId: 'x', userId: 'y' }),
        MessageGroupId: 'lost',
        MessageDeduplicationId: randomUUID(),
      }),
    );
    await waitForIdle(sb.target, 60_000);
    expect((await grantsOf(eventId)).map((g) => g.decision)).toEqual(['unknown-event']);
    const dead = await peekDlq(sb.target, 'entries');
    expect(dead).toHaveLength(1);
    expect(dead[0]?.reason).toMatch(/^schema validation failed: .*correlationId/);
  });

  it('refuses a malformed submission to the submitter, before it is queued', async () => {
    await expect(
      submitEntry(sb.target.sqs, o().EntriesQueueUrl, { eventId: 'bad id!', userId: 'u', answers: {} }),
    ).rejects.toThrow(/eventId may hold letters, digits/);
  });

  it('retries a failing notify stage into its DLQ without a second coupon, and a redrive then notifies once', async () => {
    const eventId = await newEvent(3);
    await waitForIdle(sb.target, 60_000);
    // The notifications table goes away (a downstream outage): every notify attempt fails.
    const { dynamodb: ddb } = createClients({
      region: 'us-east-1',
      credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
      endpoints: { dynamodb: sb.emulators.dynamodbEndpoint },
    });
    const { Table } = await ddb.send(new DescribeTableCommand({ TableName: o().NotificationsTableName }));
    await ddb.send(new DeleteTableCommand({ TableName: o().NotificationsTableName }));
    try {
      await submitEntry(sb.target.sqs, o().EntriesQueueUrl, { eventId, userId: 'unlucky', answers: {} });
      await waitFor(
        'the coupon message to reach the notify DLQ after 3 receives',
        async () => (await stackStatus(sb.target)).find((q) => q.name === 'notify')?.dlq === 1,
        { timeoutMs: 60_000 },
      );
      expect(await couponsOf(eventId)).toHaveLength(1);
      expect(await stockLeft(sb.target.ddb, o().StockTableName, eventId)).toBe(2);
      const [dead] = await peekDlq(sb.target, 'notify');
      expect(dead?.receiveCount).toBeGreaterThanOrEqual(3);
      expect(JSON.parse(dead?.body ?? '{}').payload.couponId).toBe(entryHash(eventId, 'unlucky'));
    } finally {
      await ddb.send(
        new CreateTableCommand({
          TableName: o().NotificationsTableName,
          KeySchema: Table?.KeySchema,
          AttributeDefinitions: Table?.AttributeDefinitions,
          BillingMode: 'PAY_PER_REQUEST',
        }),
      );
      ddb.destroy();
    }
    expect(await redrive(sb.target, 'notify')).toEqual({ moved: 1, method: 'receive-send-delete' });
    await waitFor('the redriven notification', async () => (await notified(eventId)) === 1);
    await waitForIdle(sb.target, 60_000);
    expect(await notified(eventId)).toBe(1);
    await waitFor('the notification to be logged', async () => sent(eventId) === 1);
    expect(await couponsOf(eventId)).toHaveLength(1);
    expect(await stockLeft(sb.target.ddb, o().StockTableName, eventId)).toBe(2);
  });
});

describe('the operator CLI on the gift stack', () => {
  // The CLI as a user runs it, pointed at this sandbox through the file `npm start -- --stack Gift-dev --keep` writes.
  function cli(...args: string[]) {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'gift-cli-'));
    const file = path.join(dir, 'target.json');
    const e = sb.emulators;
    writeFileSync(
      file,
      JSON.stringify({
        stackName: 'Gift-dev',
        outputs: sb.provisioned.outputs,
        endpoints: { sqs: e.sqsEndpoint, dynamodb: e.dynamodbEndpoint, s3: e.s3Endpoint },
        region: 'us-east-1',
        pid: process.pid,
      } satisfies SandboxFile),
    );
    // Asynchronously: the emulators serve from this process, so a blocking spawn would deadlock the child.
    return new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', path.join(PROJECT_ROOT, 'cli', 'main.ts'), ...args],
        { cwd: PROJECT_ROOT, env: { ...process.env, CRAWLER_SANDBOX_TARGET: file } },
      );
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      child.on('close', (status) => resolve({ status, stdout, stderr }));
    });
  }

  it('lists the stack’s own queues, peeks and redrives its DLQs by their names, and refuses crawler commands', async () => {
    await waitForIdle(sb.target, 60_000);
    const status = await cli('status');
    expect(status.status, status.stderr).toBe(0);
    expect(status.stdout.trim()).toMatch(
      /^notify 0 queued \/ 0 in flight \(DLQ 0\) · entries 0 queued \/ 0 in flight \(DLQ 1\)$/,
    );
    const dlq = await cli('dlq', 'entries');
    expect(dlq.status, dlq.stderr).toBe(0);
    expect(dlq.stdout).toContain('schema validation failed');
    const wrong = await cli('dlq', 'frontier');
    expect(wrong.status).toBe(2);
    expect(wrong.stderr).toContain('name a queue of Gift-dev: notify or entries (got "frontier")');
    const submit = await cli('submit', 'http://a.example/');
    expect(submit.status).toBe(1);
    expect(submit.stderr).toContain('submit is a crawler command, and stack Gift-dev is not a crawler stack');
    // The malformed entry goes back to its queue and, still malformed, straight back to the DLQ.
    const redriven = await cli('redrive', 'entries');
    expect(redriven.status, redriven.stderr).toBe(0);
    expect(redriven.stdout).toContain('moved 1 message from the entries DLQ back to its queue');
    await waitFor(
      'the entry to be dead-lettered again',
      async () => (await peekDlq(sb.target, 'entries')).length === 1,
    );
  });
});
