import type { BatchExecuteStatementCommand, DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import { type Statement, StatementBatcher, StatementFailed } from '../../functions/kit/statement-batcher';

/**
 * A stand-in client that records each BatchExecuteStatement's statements, answers each statement with the
 * error `refuse` names for it (none: success), and fails whole requests while `down` is set.
 */
function fakeDdb(refuse: (statement: string) => string | undefined = () => undefined) {
  const requests: string[][] = [];
  const parameters: unknown[][] = [];
  const state = { down: false, inFlight: 0, maxInFlight: 0 };
  const client = {
    async send(command: BatchExecuteStatementCommand) {
      const statements = (command.input.Statements ?? []).map((s) => s.Statement ?? '');
      requests.push(statements);
      parameters.push(...(command.input.Statements ?? []).map((s) => s.Parameters ?? []));
      state.inFlight++;
      state.maxInFlight = Math.max(state.maxInFlight, state.inFlight);
      await new Promise((r) => setTimeout(r, 5));
      state.inFlight--;
      if (state.down) throw new Error('network down');
      return {
        Responses: statements.map((s) => {
          const code = refuse(s);
          return code ? { Error: { Code: code, Message: 'refused' } } : {};
        }),
      };
    },
  } as unknown as DynamoDBDocumentClient;
  return { client, requests, parameters, state };
}

const stmt = (name: string): Statement => ({ Statement: name, Parameters: [name] });

describe('StatementBatcher', () => {
  it('runs the statements started in one turn in one request, 25 at most per request, side by side', async () => {
    const { client, requests, parameters, state } = fakeDdb();
    const b = new StatementBatcher(client);
    const names = Array.from({ length: 30 }, (_, i) => `s${i}`);
    await Promise.all(names.map((n) => b.run(n, stmt(n))));
    expect(requests.map((r) => r.length)).toEqual([25, 5]);
    expect(requests.flat()).toEqual(names);
    expect(parameters).toEqual(names.map((n) => [n]));
    // Different items: the second request does not wait for the first.
    expect(state.maxInFlight).toBe(2);
  });

  it('sends statements started in separate turns in separate requests', async () => {
    const { client, requests } = fakeDdb();
    const b = new StatementBatcher(client);
    const first = b.run('a', stmt('a'));
    await new Promise((r) => setTimeout(r, 1));
    await Promise.all([first, b.run('b', stmt('b'))]);
    expect(requests).toEqual([['a'], ['b']]);
  });

  it('rejects only the statement DynamoDB refused, with its code, and resolves its batch-mates', async () => {
    const { client, requests } = fakeDdb((s) => (s === 'bad' ? 'ConditionalCheckFailed' : undefined));
    const b = new StatementBatcher(client);
    const results = await Promise.allSettled(['ok1', 'bad', 'ok2'].map((n) => b.run(n, stmt(n))));
    expect(requests).toEqual([['ok1', 'bad', 'ok2']]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    const reason = (results[1] as PromiseRejectedResult).reason;
    expect(reason).toBeInstanceOf(StatementFailed);
    expect(reason).toMatchObject({
      name: 'StatementFailed',
      code: 'ConditionalCheckFailed',
      message: 'ConditionalCheckFailed: refused',
    });
  });

  it('names an error DynamoDB gave no code for, and fails every statement of an answer with no responses', async () => {
    const answers = [{ Responses: [{ Error: { Message: 'odd' } }] }, {}];
    const client = { send: async () => answers.shift() } as unknown as DynamoDBDocumentClient;
    const b = new StatementBatcher(client);
    await expect(b.run('a', stmt('a'))).rejects.toMatchObject({ code: 'Unknown', message: 'Unknown: odd' });
    const results = await Promise.allSettled(['b', 'c'].map((n) => b.run(n, stmt(n))));
    expect(results.map((r) => (r as PromiseRejectedResult).reason?.code)).toEqual([
      'NoResponse',
      'NoResponse',
    ]);
  });

  it('rejects a statement DynamoDB gave no answer for, rather than taking it as done', async () => {
    const client = {
      send: async () => ({ Responses: [{}] }),
    } as unknown as DynamoDBDocumentClient;
    const b = new StatementBatcher(client);
    const results = await Promise.allSettled(['a', 'b'].map((n) => b.run(n, stmt(n))));
    expect(results[0]?.status).toBe('fulfilled');
    expect((results[1] as PromiseRejectedResult).reason).toMatchObject({
      code: 'NoResponse',
      message: 'NoResponse: DynamoDB returned no response for it',
    });
  });

  it('rejects every statement of a request that failed as a whole', async () => {
    const { client, state } = fakeDdb();
    state.down = true;
    const b = new StatementBatcher(client);
    const results = await Promise.allSettled(['a', 'b'].map((n) => b.run(n, stmt(n))));
    expect(results.map((r) => (r as PromiseRejectedResult).reason?.message)).toEqual([
      'network down',
      'network down',
    ]);
  });

  it('never puts two statements on one item in a request, and runs the later after the first settled', async () => {
    const { client, requests, state } = fakeDdb();
    const b = new StatementBatcher(client);
    const order: string[] = [];
    await Promise.all([
      b.run('item-1', stmt('first')).then(() => order.push('first')),
      b.run('item-2', stmt('other')).then(() => order.push('other')),
      b.run('item-1', stmt('second')).then(() => order.push('second')),
    ]);
    expect(requests).toEqual([['first', 'other'], ['second']]);
    expect(order.indexOf('first')).toBeLessThan(order.indexOf('second'));
    expect(state.maxInFlight).toBe(1);
  });
});
