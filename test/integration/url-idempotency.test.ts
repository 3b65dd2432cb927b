import { randomUUID } from 'node:crypto';
import {
  IdempotencyAlreadyInProgressError,
  IdempotencyConfig,
  makeIdempotent,
} from '@aws-lambda-powertools/idempotency';
import {
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import type { Context } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CRAWLER_OUTPUTS, type CrawlerOutput, listUrls } from '../../cli/crawl-api';
import { fetchedFields, pageStoreUpdate } from '../../functions/crawl/url-record';
import {
  type CollectResult,
  runGroup,
  UrlRecordPersistenceLayer,
} from '../../functions/crawler/url-idempotency';
import { type Sandbox, startSandbox } from '../../sandbox/sandbox';
import { holdLease } from './leases';

// The crawler's Powertools persistence layer on DynamoDB Local, driven through makeIdempotent as the
// handler drives it: what it writes on the URL record, and what it leaves alone.
let sb: Sandbox<CrawlerOutput>;
beforeAll(async () => {
  sb = await startSandbox({ runFunctions: false, outputs: CRAWLER_OUTPUTS });
});
afterAll(async () => {
  await sb?.stop();
});

const context = { getRemainingTimeInMillis: () => 30_000 } as Context;

/**
 * The sandbox's client, shown each command's name first: the commands `watch` answers 'refuse' for fail
 * without reaching DynamoDB, the rest go through.
 */
function watchedClient(watch: (command: string) => 'refuse' | undefined): DynamoDBDocumentClient {
  return {
    send: (command: { constructor: { name: string } }) =>
      watch(command.constructor.name) === 'refuse'
        ? Promise.reject(new Error('refused'))
        : sb.target.ddb.send(command as never),
  } as unknown as DynamoDBDocumentClient;
}

function setup(client: DynamoDBDocumentClient = sb.target.ddb) {
  const table = sb.target.outputs.UrlsTableName;
  const key = { crawlId: `idem-${randomUUID()}`, url: 'http://idem.example/page' };
  // A host of its own per test, so no test meets another's group lease.
  const groupId = `idem-${randomUUID()}.example`;
  const config = new IdempotencyConfig({ expiresAfterSeconds: 3600 });
  config.registerLambdaContext(context);
  let calls = 0;
  const layer = new UrlRecordPersistenceLayer(table, client, 3600);
  const collect = makeIdempotent(
    async (_key: typeof key, behaviour: 'fetch' | 'fail'): Promise<CollectResult> => {
      calls++;
      if (behaviour === 'fail') throw new Error('transient');
      return { outcome: 'fetched', httpStatus: 200, depth: 1 };
    },
    {
      persistenceStore: layer,
      config,
      dataIndexArgument: 0,
    },
  );
  const item = async () =>
    (await sb.target.ddb.send(new GetCommand({ TableName: table, Key: key, ConsistentRead: true }))).Item ??
    {};
  /**
   * One receive of a group's records, as the handler makes it: `ids` are the receive's message ids, oldest
   * first, `receive` the first one's receive count; `fn` runs inside the attempt, which is released after.
   */
  const group = <T>(
    ids: string[],
    fn: () => Promise<T>,
    opts: {
      receive?: number;
      ms?: number;
      keys?: Array<typeof key>;
      exclusive?: boolean;
      unread?: Array<typeof key>;
    } = {},
  ) =>
    runGroup(
      layer.group({
        groupId,
        owner: `${ids[0]}:${opts.receive ?? 1}`,
        messageIds: ids,
        keys: opts.keys ?? [key],
        deadlineMs: Date.now() + (opts.ms ?? 30_000),
        exclusive: opts.exclusive,
        unread: opts.unread,
      }),
      fn,
    );
  const leaseItem = async () =>
    (
      await sb.target.ddb.send(
        new GetCommand({
          TableName: table,
          Key: { crawlId: `#frontier-group#${groupId}`, url: '#lease' },
          ConsistentRead: true,
        }),
      )
    ).Item ?? {};
  return { table, key, collect, item, group, leaseItem, calls: () => calls };
}

describe('a first receive that no other receive can meet (visibility outlasts the invocation)', () => {
  it("writes no group lease and leaves a fetched URL's completion to the page's store, which later receives replay", async () => {
    const { table, key, collect, item, group, leaseItem, calls } = setup();
    await sb.target.ddb.send(
      new PutCommand({
        TableName: table,
        Item: { ...key, claimedBy: 'http://idem.example/', expiresAt: 1e10 },
      }),
    );
    expect(await group(['m1'], () => collect(key, 'fetch'), { exclusive: true })).toMatchObject({
      outcome: 'fetched',
    });
    expect(await leaseItem()).toEqual({});
    // No write for the fetch: the parser records the completion when it stores the page.
    expect(await item()).toEqual({ ...key, claimedBy: 'http://idem.example/', expiresAt: 1e10 });

    // The parser's store: the page, the crawler's outcome and its completion in one write; the expiry goes.
    const fields = {
      fetchedAt: Date.now(),
      title: 'T',
      ...fetchedFields({ depth: 1, httpStatus: 200 }, 3600),
    };
    await sb.target.ddb.send(new UpdateCommand(pageStoreUpdate(table, key, fields)));
    const stored = await item();
    expect(stored).toMatchObject({
      outcome: 'fetched',
      idemStatus: 'COMPLETED',
      title: 'T',
      claimedBy: 'http://idem.example/',
    });
    expect(stored).not.toHaveProperty('expiresAt');

    // A second message for the URL in a later exclusive receive replays the outcome: the read still runs.
    expect(await group(['m2'], () => collect(key, 'fetch'), { exclusive: true })).toMatchObject({
      outcome: 'fetched',
    });
    expect(calls()).toBe(1);
    expect(await leaseItem()).toEqual({});
    // A redelivery is never exclusive: it leases the group, and gives the lease back.
    await group(['m2'], () => collect(key, 'fetch'), { receive: 2 });
    expect(await leaseItem()).toMatchObject({ url: '#lease' });
    expect((await leaseItem()).leaseUntil).toBeUndefined();
    expect(calls()).toBe(1);
  });

  it("reads no record for a URL's first send on an exclusive receive, and reads it in every other case", async () => {
    let reads = 0;
    const counting = watchedClient((command) => {
      if (command === 'BatchGetCommand') reads++;
      return undefined;
    });
    const { table, key, collect, group, calls } = setup(counting);
    // A completion on the record, which only a read can see: replayed where it is read, run where it is not.
    await sb.target.ddb.send(
      new PutCommand({
        TableName: table,
        Item: { ...key, outcome: 'http-error', idemStatus: 'COMPLETED', idemExpiry: 1e10, expiresAt: 1e10 },
      }),
    );
    // Exclusive, a first send: no read, so the function runs (its sender guarantees the record holds none).
    expect(
      await group(['m1'], () => collect(key, 'fetch'), { exclusive: true, unread: [key] }),
    ).toMatchObject({
      outcome: 'fetched',
    });
    expect([reads, calls()]).toEqual([0, 1]);
    await sb.target.ddb.send(
      new PutCommand({
        TableName: table,
        Item: { ...key, outcome: 'http-error', idemStatus: 'COMPLETED', idemExpiry: 1e10, expiresAt: 1e10 },
      }),
    );
    // Exclusive, not a first send: read, and the completion replays.
    expect(await group(['m2'], () => collect(key, 'fetch'), { exclusive: true })).toMatchObject({
      outcome: 'http-error',
    });
    expect([reads, calls()]).toEqual([1, 1]);
    // Not exclusive: the lease path reads every record, first send or not.
    expect(
      await group(['m3'], () => collect(key, 'fetch'), { exclusive: false, unread: [key] }),
    ).toMatchObject({
      outcome: 'http-error',
    });
    expect([reads, calls()]).toEqual([2, 1]);
  });

  it("logs a group's fetched URLs in one item that listUrls reads as their outcome, or completes each where the log is refused", async () => {
    const table = sb.target.outputs.UrlsTableName;
    const crawlId = `log-${randomUUID()}`;
    const keys = [1, 2, 3].map((i) => ({ crawlId, url: `http://log.example/${'p'.repeat(200)}/${i}` }));
    const claim = { claimedBy: 'http://log.example/', expiresAt: 1e10 };
    for (const k of keys)
      await sb.target.ddb.send(new PutCommand({ TableName: table, Item: { ...k, ...claim } }));
    const refusingPut = watchedClient((command) => (command === 'PutCommand' ? 'refuse' : undefined));
    const fetchAll = async (client: DynamoDBDocumentClient, these: typeof keys) => {
      const layer = new UrlRecordPersistenceLayer(table, client, 3600);
      const config = new IdempotencyConfig({ expiresAfterSeconds: 3600 });
      config.registerLambdaContext(context);
      const collect = makeIdempotent(
        async (_key: (typeof keys)[number]): Promise<CollectResult> => ({ outcome: 'fetched', depth: 1 }),
        { persistenceStore: layer, config, dataIndexArgument: 0 },
      );
      const id = randomUUID();
      const attempt = layer.group({
        groupId: `log-${randomUUID()}.example`,
        owner: `${id}:1`,
        messageIds: [id],
        keys: these,
        deadlineMs: Date.now() + 30_000,
        exclusive: true,
      });
      await runGroup(attempt, async () => {
        for (const k of these) await collect(k);
        await layer.logDeferred([attempt]);
      });
    };
    const read = async (k: (typeof keys)[number]) =>
      (await sb.target.ddb.send(new GetCommand({ TableName: table, Key: k, ConsistentRead: true }))).Item;

    await fetchAll(sb.target.ddb, keys.slice(0, 2));
    // The URL records are untouched; one log item of a few hundred bytes names both URLs.
    for (const k of keys.slice(0, 2)) expect(await read(k)).toEqual({ ...k, ...claim });
    const outcomes = new Map((await listUrls(sb.target, crawlId)).map((u) => [u.url, u.outcome]));
    expect(outcomes).toEqual(
      new Map([
        [keys[0]?.url, 'fetched'],
        [keys[1]?.url, 'fetched'],
        [keys[2]?.url, undefined],
      ]),
    );

    // The log refused: the URL's completion goes on its own record.
    await fetchAll(refusingPut, keys.slice(2));
    expect(await read(keys[2] as (typeof keys)[number])).toMatchObject({
      outcome: 'fetched',
      idemStatus: 'COMPLETED',
    });
    expect((await listUrls(sb.target, crawlId)).map((u) => u.outcome)).toEqual([
      'fetched',
      'fetched',
      'fetched',
    ]);

    // An outcome on the record (a later attempt's) is the URL's, whatever a log says.
    await sb.target.ddb.send(
      new UpdateCommand({
        TableName: table,
        Key: keys[0],
        UpdateExpression: 'SET outcome = :o',
        ExpressionAttributeValues: { ':o': 'http-error' },
      }),
    );
    expect((await listUrls(sb.target, crawlId)).map((u) => u.outcome)).toEqual([
      'http-error',
      'fetched',
      'fetched',
    ]);
  });

  it('writes any other outcome at once, and a later outcome on a stored page leaves the page kept', async () => {
    const { table, key, item } = setup();
    // The same layer twice: the batched completion, and the single write it falls back to when the
    // BatchExecuteStatement is refused.
    const refusing = watchedClient((command) =>
      command === 'BatchExecuteStatementCommand' ? 'refuse' : undefined,
    );
    const run = async (client: DynamoDBDocumentClient, status: number) => {
      const layer = new UrlRecordPersistenceLayer(table, client, 3600);
      const config = new IdempotencyConfig({ expiresAfterSeconds: 1 });
      config.registerLambdaContext(context);
      const refused = makeIdempotent(
        async (_key: typeof key): Promise<CollectResult> => ({
          outcome: 'http-error',
          httpStatus: status,
          depth: 1,
        }),
        { persistenceStore: layer, config, dataIndexArgument: 0 },
      );
      const id = randomUUID();
      return runGroup(
        layer.group({
          groupId: `idem-${randomUUID()}.example`,
          owner: `${id}:1`,
          messageIds: [id],
          keys: [key],
          deadlineMs: Date.now() + 30_000,
          exclusive: true,
        }),
        () => refused(key),
      );
    };
    // A page stored from an earlier fetch, whose completion has run out: the URL is fetched again.
    const storeOld = () =>
      sb.target.ddb.send(
        new UpdateCommand(
          pageStoreUpdate(table, key, { fetchedAt: 1, title: 'old', ...fetchedFields({ depth: 1 }, -10) }),
        ),
      );
    /** The outcome is recorded with its status, and the old page is kept: no expiry was given to it. */
    const expectOutcomeOnKeptPage = async (httpStatus: number) => {
      const stored = await item();
      expect(stored).toMatchObject({
        outcome: 'http-error',
        httpStatus,
        idemStatus: 'COMPLETED',
        title: 'old',
      });
      expect(stored).not.toHaveProperty('expiresAt');
    };
    await storeOld();
    expect(await run(sb.target.ddb, 503)).toMatchObject({ outcome: 'http-error' });
    await expectOutcomeOnKeptPage(503);

    await sb.target.ddb.send(new DeleteCommand({ TableName: table, Key: key }));
    await storeOld();
    expect(await run(refusing, 502)).toMatchObject({ outcome: 'http-error' });
    await expectOutcomeOnKeptPage(502);
  });
});

/** Resolves when `flag.open` is set: a record that holds its group's lease until the test lets it go. */
const until = async (flag: { open: boolean }) => {
  while (!flag.open) await new Promise((r) => setTimeout(r, 10));
};

describe('UrlRecordPersistenceLayer (Powertools idempotency on the URL record, a lease per message group)', () => {
  it('records the outcome with completion, keeps the claim, and replays the outcome without running again', async () => {
    const { table, key, collect, item, group, leaseItem, calls } = setup();
    await sb.target.ddb.send(
      new PutCommand({ TableName: table, Item: { ...key, claimedBy: 'http://idem.example/' } }),
    );

    await expect(group(['m1'], () => collect(key, 'fail'))).rejects.toThrow('transient');
    // The failed attempt wrote nothing on the URL, so its retry may run, and the parser's claim stays.
    expect(await item()).toEqual({ ...key, claimedBy: 'http://idem.example/' });
    // Its group lease was given back.
    expect((await leaseItem()).leaseUntil).toBeUndefined();

    expect(await group(['m1'], () => collect(key, 'fetch'), { receive: 2 })).toEqual({
      outcome: 'fetched',
      httpStatus: 200,
      depth: 1,
    });
    expect(await item()).toMatchObject({
      claimedBy: 'http://idem.example/',
      outcome: 'fetched',
      httpStatus: 200,
      idemStatus: 'COMPLETED',
    });
    expect(calls()).toBe(2);

    // A redelivery: the stored outcome comes back and the function does not run.
    expect(await group(['m1'], () => collect(key, 'fetch'), { receive: 3 })).toMatchObject({
      outcome: 'fetched',
      httpStatus: 200,
    });
    expect(calls()).toBe(2);
  });

  it("holds off a second receive of the holder's messages while its lease is live, and lets a later batch take over", async () => {
    const { key, collect, group, leaseItem, calls } = setup();
    const other = { ...key, url: 'http://idem.example/other' };
    const before = { ...key, url: 'http://idem.example/before' };
    const gate = { open: false };
    // The first receive leases the group for m1 and m2: it has done m1's URL and is still busy with m2's.
    const first = group(
      ['m1', 'm2'],
      async () => {
        await collect(before, 'fetch');
        await until(gate);
        return collect(key, 'fetch');
      },
      { keys: [before, key] },
    );
    while ((await leaseItem()).leaseOwner !== 'm1:1') await new Promise((r) => setTimeout(r, 10));
    // A visibility timeout ran out: the same messages come again (receive 2), from m1 or, with m1
    // dead-lettered, from m2. Both are held off and nothing runs, but m1's completed URL replays.
    await expect(
      group(['m1', 'm2'], () => collect(key, 'fetch'), { receive: 2, keys: [before, key] }),
    ).rejects.toBeInstanceOf(IdempotencyAlreadyInProgressError);
    await expect(group(['m2'], () => collect(key, 'fetch'), { receive: 2 })).rejects.toBeInstanceOf(
      IdempotencyAlreadyInProgressError,
    );
    expect(
      await group(['m1', 'm2'], () => collect(before, 'fetch'), { receive: 2, keys: [before, key] }),
    ).toMatchObject({ outcome: 'fetched' });
    expect(calls()).toBe(1);
    // A batch that starts with a later message comes after the holder's messages were deleted.
    expect(await group(['m3'], () => collect(other, 'fetch'), { keys: [other] })).toMatchObject({
      outcome: 'fetched',
    });
    gate.open = true;
    await first;
    expect(calls()).toBe(3);
  });

  it('takes over a lease that has run out, and replays a completed URL even while another receive holds the lease', async () => {
    const { key, collect, group, calls } = setup();
    const gate = { open: false };
    const leased = { open: false };
    // An invocation whose time has run out (a lease already past) does not hold anyone off.
    const expired = group(
      ['m1'],
      async () => {
        await collect(key, 'fail').catch(() => undefined);
        leased.open = true;
        await until(gate);
      },
      { ms: -1_000 },
    );
    await until(leased);
    expect(await group(['m1'], () => collect(key, 'fetch'), { receive: 2 })).toMatchObject({
      outcome: 'fetched',
    });
    gate.open = true;
    await expired;
    expect(calls()).toBe(2);

    const other = { ...key, url: 'http://idem.example/held' };
    const gate2 = { open: false };
    const leased2 = { open: false };
    const holder = group(
      ['m5', 'm6'],
      async () => {
        await collect(other, 'fail').catch(() => undefined);
        leased2.open = true;
        await until(gate2);
      },
      { keys: [key, other] },
    );
    await until(leased2);
    // m5 again while the holder is live: the completed URL replays, the other is refused.
    expect(
      await group(['m5', 'm6'], () => collect(key, 'fetch'), { receive: 2, keys: [key, other] }),
    ).toMatchObject({
      outcome: 'fetched',
    });
    await expect(
      group(['m5', 'm6'], () => collect(other, 'fetch'), { receive: 2, keys: [key, other] }),
    ).rejects.toBeInstanceOf(IdempotencyAlreadyInProgressError);
    gate2.open = true;
    await holder;
    expect(calls()).toBe(3);
  });

  it('lets an SDK resend of a lease write whose response was lost go on, instead of finding its own lease', async () => {
    const { key, collect, calls, item, group } = setup();
    let dropped = 0;
    // The first lease write reaches DynamoDB and commits; its response is then lost, so the SDK resends it.
    sb.target.ddb.middlewareStack.add(
      (next) => async (args) => {
        const result = await next(args);
        const input = args.input as { UpdateExpression?: string };
        if (dropped === 0 && input.UpdateExpression?.includes('leaseOwner = :owner,')) {
          dropped++;
          throw Object.assign(new Error('response lost after commit'), { $retryable: {}, $metadata: {} });
        }
        return result;
      },
      { step: 'deserialize', name: 'dropFirstLeaseResponse' },
    );
    try {
      expect(await group(['message-1'], () => collect(key, 'fetch'))).toMatchObject({ outcome: 'fetched' });
    } finally {
      sb.target.ddb.middlewareStack.remove('dropFirstLeaseResponse');
    }
    expect(dropped).toBe(1);
    expect(calls()).toBe(1);
    expect(await item()).toMatchObject({ outcome: 'fetched', idemStatus: 'COMPLETED' });
  });

  it('runs a URL once when two messages of one receive carry it, and honours a live per-URL lease', async () => {
    const { table, key, collect, group, calls } = setup();
    const twice = await group(['m1', 'm2'], async () => [
      await collect(key, 'fetch'),
      await collect(key, 'fetch'),
    ]);
    expect(twice).toEqual([
      { outcome: 'fetched', httpStatus: 200, depth: 1 },
      expect.objectContaining({ outcome: 'fetched' }),
    ]);
    expect(calls()).toBe(1);

    // An INPROGRESS lease on the URL record itself, as the per-URL protocol of an older version left it.
    const other = { ...key, url: 'http://idem.example/legacy' };
    await holdLease(sb.target.ddb, table, other, 60_000, 'message-9:1');
    await expect(group(['m3'], () => collect(other, 'fetch'), { keys: [other] })).rejects.toBeInstanceOf(
      IdempotencyAlreadyInProgressError,
    );
    await holdLease(sb.target.ddb, table, other, -1_000, 'message-9:1');
    expect(await group(['m4'], () => collect(other, 'fetch'), { keys: [other] })).toMatchObject({
      outcome: 'fetched',
    });
    expect(calls()).toBe(2);
  });

  it('completes the URLs of a group that finish together in one BatchExecuteStatement, and a URL with no record on its own', async () => {
    // The real table, with each request's command recorded on the way.
    const sent: string[] = [];
    const spy = {
      send: (command: { constructor: { name: string } }) => {
        sent.push(command.constructor.name);
        return sb.target.ddb.send(command as never);
      },
    } as unknown as DynamoDBDocumentClient;
    const { table, key, collect, group, calls } = setup(spy);
    const claimed = ['a', 'b', 'c'].map((p) => ({ ...key, url: `http://idem.example/${p}` }));
    const expiry = Math.floor(Date.now() / 1000) + 3600;
    for (const k of claimed)
      await sb.target.ddb.send(
        new PutCommand({
          TableName: table,
          Item: { ...k, claimedBy: 'http://idem.example/', expiresAt: expiry },
        }),
      );
    // A per-URL lease an older version left, run out: the completion removes it.
    await holdLease(sb.target.ddb, table, claimed[0] as typeof key, -1_000, 'message-0:1');
    const unrecorded = { ...key, url: 'http://idem.example/no-record' };
    const all = [...claimed, unrecorded];

    const ids = all.map((_, i) => `m${i}`);
    await group(ids, () => Promise.all(all.map((k) => collect(k, 'fetch'))), { keys: all });
    expect(calls()).toBe(4);
    // The lease take, its read, the three claimed URLs' completions together, the unrecorded URL's statement
    // refused (PartiQL updates only an existing item) and written alone, and the lease release.
    expect(sent).toEqual([
      'UpdateCommand',
      'BatchGetCommand',
      'BatchExecuteStatementCommand',
      'UpdateCommand',
      'UpdateCommand',
    ]);
    const read = async (k: typeof key) =>
      (await sb.target.ddb.send(new GetCommand({ TableName: table, Key: k, ConsistentRead: true }))).Item;
    for (const k of claimed)
      expect(await read(k)).toEqual({
        ...k,
        claimedBy: 'http://idem.example/',
        expiresAt: expiry,
        outcome: 'fetched',
        outcomeAt: expect.any(String),
        httpStatus: 200,
        depth: 1,
        idemStatus: 'COMPLETED',
        idemExpiry: expect.any(Number),
      });
    expect(await read(unrecorded)).toMatchObject({
      outcome: 'fetched',
      idemStatus: 'COMPLETED',
      expiresAt: expect.any(Number),
    });

    // Each completion replays: nothing runs again.
    await group(
      ids.map((id) => `${id}-again`),
      () => Promise.all(all.map((k) => collect(k, 'fetch'))),
      { keys: all },
    );
    expect(calls()).toBe(4);
  });

  it('refuses to run outside a group attempt, with an error that says how', async () => {
    const { key, collect, calls } = setup();
    // Powertools wraps what the persistence layer throws; the layer's own message is the cause.
    await expect(collect(key, 'fetch')).rejects.toMatchObject({
      cause: expect.objectContaining({ message: expect.stringMatching(/inside runGroup/) }),
    });
    expect(calls()).toBe(0);
  });
});
