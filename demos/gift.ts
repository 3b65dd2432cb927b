import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { type Demo, DemoUsageError } from '../sandbox/demo';

interface GiftArgs {
  readonly stock: number;
  readonly users: number;
  /** Users who submit twice (a double click, a retry after a timeout). */
  readonly twice: number;
}

const usage = `gift demo: [--stock N] [--users N] [--twice N]
  Opens an event with N coupons (default 20), has --users users (default 50) submit the survey, --twice of
  them (default 10) a second time, and waits for every entry to be decided and every coupon notified.`;

const OUTPUTS = ['EntriesQueueUrl', 'StockTableName', 'GrantsTableName', 'NotificationsTableName'] as const;

function whole(name: string, raw: unknown, fallback: number, max: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0 || n > max)
    throw new DemoUsageError(`--${name} must be a whole number from 0 to ${max}, got "${String(raw)}"`);
  return n;
}

/** The gift event's demo: more users than coupons, some submitting twice, all at once. */
export const demo: Demo = {
  usage,
  parse(argv): GiftArgs {
    let values: Record<string, unknown>;
    try {
      ({ values } = parseArgs({
        args: argv,
        options: { stock: { type: 'string' }, users: { type: 'string' }, twice: { type: 'string' } },
      }));
    } catch (error) {
      throw new DemoUsageError((error as Error).message);
    }
    const users = whole('users', values.users, 50, 10_000);
    const args = {
      stock: whole('stock', values.stock, 20, 100_000),
      users,
      twice: whole('twice', values.twice, 10, 10_000),
    };
    if (args.twice > users)
      throw new DemoUsageError(`--twice (${args.twice}) is more than --users (${users})`);
    return args;
  },

  async run(sandbox, raw, log) {
    const args = raw as GiftArgs;
    const { requireOutputs } = await import('../tooling/target');
    const { waitForIdle, formatStatus } = await import('../tooling/queues');
    const { submitEntry } = await import('../functions/gift/submission');
    const { countNotifications, listGrants, openEvent, stockLeft } = await import(
      '../functions/gift/records'
    );
    const { target } = sandbox;
    const o = requireOutputs(target.outputs, OUTPUTS, 'the gift demo');
    const eventId = `survey-${randomUUID().slice(0, 8)}`;
    await openEvent(target.ddb, o.StockTableName, eventId, args.stock);
    const users = Array.from({ length: args.users }, (_, i) => `user-${String(i + 1).padStart(4, '0')}`);
    const submissions = [...users, ...users.slice(0, args.twice)];
    const started = Date.now();
    // Every submission returns as soon as its entry is on the queue, whatever the stock.
    await Promise.all(
      submissions.map((userId) =>
        submitEntry(target.sqs, o.EntriesQueueUrl, {
          eventId,
          userId,
          answers: { q1: 'yes', q2: `${userId} likes it` },
        }),
      ),
    );
    log(
      `▶ event ${eventId}: ${args.stock} coupons; ${submissions.length} submissions from ${args.users} users accepted in ${Date.now() - started} ms`,
    );
    const status = await waitForIdle(target, 120_000);
    const grants = await listGrants(target.ddb, o.GrantsTableName, eventId);
    const coupons = grants.filter((g) => g.decision === 'coupon');
    const soldOut = grants.filter((g) => g.decision === 'sold-out').length;
    const notified = await countNotifications(
      target.ddb,
      o.NotificationsTableName,
      coupons.map((g) => g.couponId ?? ''),
    );
    const left = (await stockLeft(target.ddb, o.StockTableName, eventId)) ?? 0;
    const expected = Math.min(args.stock, args.users);
    const ok =
      coupons.length === expected &&
      grants.length === args.users &&
      notified === coupons.length &&
      left === args.stock - coupons.length;
    log(
      `${ok ? '✔' : '✖'} decided in ${((Date.now() - started) / 1000).toFixed(1)} s: ${coupons.length} coupons, ${soldOut} sold out, ${grants.length} users decided once each`,
    );
    log(
      `  stock left ${left} of ${args.stock}; ${notified} notifications for ${coupons.length} coupons; queues: ${formatStatus(status)}`,
    );
    log(`  logs: grep ${eventId} ${path.relative(process.cwd(), sandbox.logFile)}`);
    return { ok, keepHints: ['npm run cli -- dlq entries', 'npm run cli -- dlq notify'] };
  },
};
