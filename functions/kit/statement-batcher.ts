import { BatchExecuteStatementCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

/** BatchExecuteStatement takes at most 25 statements, and no two of them on the same item. */
const MAX_STATEMENTS = 25;

/** One PartiQL statement with its `?` parameters, in native JavaScript values (the document client). */
export interface Statement {
  readonly Statement: string;
  readonly Parameters: readonly unknown[];
}

/** One statement of a batch was refused: DynamoDB's code for it (ConditionalCheckFailed, DuplicateItem, …). */
export class StatementFailed extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(`${code}: ${message}`);
    this.name = 'StatementFailed';
  }
}

interface Waiting {
  readonly item: string;
  readonly statement: Statement;
  resolve(): void;
  reject(error: Error): void;
}

/**
 * Gathers the single-item PartiQL writes (INSERT, UPDATE, DELETE: a batch may not mix reads and writes)
 * that records running side by side start in the same turn of the event loop, and runs them with one
 * BatchExecuteStatement per 25 instead of one request each. Each statement is billed as the single write it
 * is, so this saves requests (and the SDK's per-request CPU), not write units.
 *
 * `run` resolves once its own statement succeeded and rejects with `StatementFailed` when DynamoDB refused
 * that statement alone, or with the request's error when the whole request failed; the statements of a
 * batch succeed or fail one by one, so a caller's fallback is its own. Two statements on the same item never
 * share a request (DynamoDB refuses the whole batch): the later one waits for the next. Hand-written: the SDK
 * and Powertools batch reads and plain writes, not conditional statements.
 */
export class StatementBatcher {
  private waiting: Waiting[] = [];
  private scheduled = false;

  constructor(private readonly client: DynamoDBDocumentClient) {}

  /** Queue one statement on `item` (a key that names the item it writes); settles with its own result. */
  run(item: string, statement: Statement): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.waiting.push({ item, statement, resolve, reject });
      this.schedule();
    });
  }

  /** After the current turn's I/O callbacks: the statements of records that finished together go together. */
  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    const deferred: Waiting[] = [];
    const sends: Promise<void>[] = [];
    while (this.waiting.length > 0) {
      const batch: Waiting[] = [];
      const items = new Set<string>();
      const rest: Waiting[] = [];
      for (const w of this.waiting) {
        if (batch.length < MAX_STATEMENTS && !items.has(w.item)) {
          batch.push(w);
          items.add(w.item);
        } else if (items.has(w.item)) deferred.push(w);
        else rest.push(w);
      }
      this.waiting = rest;
      sends.push(this.send(batch));
    }
    if (deferred.length === 0) return;
    // A second write on an item runs after the first one's request has settled, in the order it came.
    void Promise.allSettled(sends).then(() => {
      this.waiting.unshift(...deferred);
      this.schedule();
    });
  }

  private async send(batch: Waiting[]): Promise<void> {
    try {
      const out = await this.client.send(
        new BatchExecuteStatementCommand({
          Statements: batch.map((w) => ({
            Statement: w.statement.Statement,
            Parameters: [...w.statement.Parameters],
          })),
        }),
      );
      const responses = out.Responses ?? [];
      for (const [i, w] of batch.entries()) {
        const response = responses[i];
        if (!response) w.reject(new StatementFailed('NoResponse', 'DynamoDB returned no response for it'));
        else if (response.Error)
          w.reject(new StatementFailed(response.Error.Code ?? 'Unknown', response.Error.Message ?? ''));
        else w.resolve();
      }
    } catch (error) {
      for (const w of batch) w.reject(error as Error);
    }
  }
}
