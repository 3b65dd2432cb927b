import { randomUUID } from 'node:crypto';
import {
  IdempotencyAlreadyInProgressError,
  IdempotencyConfig,
  makeIdempotent,
} from '@aws-lambda-powertools/idempotency';
import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import type { Context } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CRAWLER_OUTPUTS, type CrawlerOutput } from '../../cli/crawl-api';
import {
  type CollectResult,
  leaseOwner,
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

function setup() {
  const table = sb.target.outputs.UrlsTableName;
  const key = { crawlId: `idem-${randomUUID()}`, url: 'http://idem.example/page' };
  const config = new IdempotencyConfig({ expiresAfterSeconds: 3600 });
  config.registerLambdaContext(context);
  let calls = 0;
  const collect = makeIdempotent(
    async (_key: typeof key, behaviour: 'fetch' | 'fail'): Promise<CollectResult> => {
      calls++;
      if (behaviour === 'fail') throw new Error('transient');
      return { outcome: 'fetched', httpStatus: 200, depth: 1 };
    },
    {
      persistenceStore: new UrlRecordPersistenceLayer(table, sb.target.ddb, 3600),
      config,
      dataIndexArgument: 0,
    },
  );
  const item = async () =>
    (await sb.target.ddb.send(new GetCommand({ TableName: table, Key: key, ConsistentRead: true }))).Item ??
    {};
  return { table, key, collect, item, calls: () => calls };
}

describe('UrlRecordPersistenceLayer (Powertools idempotency on the URL record)', () => {
  it('records the outcome with completion, keeps the claim, and replays the outcome without running again', async () => {
    const { table, key, collect, item, calls } = setup();
    await sb.target.ddb.send(
      new PutCommand({ TableName: table, Item: { ...key, claimedBy: 'http://idem.example/' } }),
    );

    await expect(collect(key, 'fail')).rejects.toThrow('transient');
    // The failed attempt freed the URL for its retry and left the parser's claim in place.
    expect(await item()).toMatchObject({ claimedBy: 'http://idem.example/' });
    expect((await item()).idemStatus).toBeUndefined();

    expect(await collect(key, 'fetch')).toEqual({ outcome: 'fetched', httpStatus: 200, depth: 1 });
    expect(await item()).toMatchObject({
      claimedBy: 'http://idem.example/',
      outcome: 'fetched',
      httpStatus: 200,
      idemStatus: 'COMPLETED',
    });
    expect((await item()).idemLeaseMs).toBeUndefined();
    expect(calls()).toBe(2);

    // A redelivery: the stored outcome comes back and the function does not run.
    expect(await collect(key, 'fetch')).toMatchObject({ outcome: 'fetched', httpStatus: 200 });
    expect(calls()).toBe(2);
  });

  it('rejects a second attempt while a live lease is held, and takes over a lease that has run out', async () => {
    const { table, key, collect, calls } = setup();
    const lease = (ms: number) => holdLease(sb.target.ddb, table, key, ms);
    await lease(60_000);
    await expect(collect(key, 'fetch')).rejects.toBeInstanceOf(IdempotencyAlreadyInProgressError);
    expect(calls()).toBe(0);

    await lease(-1_000);
    expect(await collect(key, 'fetch')).toMatchObject({ outcome: 'fetched' });
    expect(calls()).toBe(1);
  });

  it('lets an SDK retry of a lease write whose response was lost go on, instead of finding its own lease', async () => {
    const { key, collect, calls, item } = setup();
    let dropped = 0;
    // The first lease write reaches DynamoDB and commits; its response is then lost, so the SDK retries it.
    sb.target.ddb.middlewareStack.add(
      (next) => async (args) => {
        const result = await next(args);
        const input = args.input as {
          UpdateExpression?: string;
          Key?: { crawlId?: { S?: string } | string };
        };
        const crawlId = typeof input.Key?.crawlId === 'string' ? input.Key.crawlId : input.Key?.crawlId?.S;
        if (dropped === 0 && crawlId === key.crawlId && input.UpdateExpression?.includes(':inprogress')) {
          dropped++;
          throw Object.assign(new Error('response lost after commit'), { $retryable: {}, $metadata: {} });
        }
        return result;
      },
      { step: 'deserialize', name: 'dropFirstLeaseResponse' },
    );
    try {
      expect(await leaseOwner.run('message-1', () => collect(key, 'fetch'))).toMatchObject({
        outcome: 'fetched',
      });
    } finally {
      sb.target.ddb.middlewareStack.remove('dropFirstLeaseResponse');
    }
    expect(dropped).toBe(1);
    expect(calls()).toBe(1);
    expect(await item()).toMatchObject({ outcome: 'fetched', idemStatus: 'COMPLETED' });
  });

  it('lets the receive that holds a live lease take it over, but not another receive or message', async () => {
    const { table, key, collect, calls } = setup();
    await holdLease(sb.target.ddb, table, key, 60_000, 'message-1:1');
    for (const other of ['message-2:1', 'message-1:2'])
      await expect(leaseOwner.run(other, () => collect(key, 'fetch'))).rejects.toBeInstanceOf(
        IdempotencyAlreadyInProgressError,
      );
    expect(calls()).toBe(0);
    expect(await leaseOwner.run('message-1:1', () => collect(key, 'fetch'))).toMatchObject({
      outcome: 'fetched',
    });
    expect(calls()).toBe(1);
  });
});
