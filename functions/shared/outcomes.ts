import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { ddb } from './clients';

/** Every URL that enters the frontier ends with one of these, so nothing disappears silently. */
export type Outcome =
  | 'fetched'
  | 'skipped-robots'
  | 'blocked-address'
  | 'dns-error'
  | 'too-large'
  | 'not-html'
  | 'http-error'
  | 'timeout'
  | 'network-error'
  | 'redirect-loop'
  | 'too-many-redirects'
  | 'bad-encoding'
  | 'unsupported-encoding'
  | 'out-of-scope'
  | 'too-deep'
  | 'budget-exhausted'
  | 'unknown-crawl'
  | 'invalid-url'
  | 'body-missing'
  /** Failed on every receive; the message is in the DLQ. A redrive replaces this with the real outcome. */
  | 'dead-lettered';

export interface OutcomeDetail {
  readonly depth?: number;
  readonly httpStatus?: number;
  readonly finalUrl?: string;
  readonly detail?: string;
  readonly bytes?: number;
}

/** The detail attributes an outcome may carry on a URL record. */
export const OUTCOME_DETAIL_FIELDS = ['depth', 'httpStatus', 'finalUrl', 'detail', 'bytes'] as const;

/**
 * The parts of an UpdateItem that record an outcome on a URL record, for callers that add their own
 * attributes to the same write (the crawler's idempotency completion does).
 */
export function outcomeUpdate(
  outcome: Outcome,
  extra: OutcomeDetail,
  ttlSeconds: number,
): { sets: string[]; names: Record<string, string>; values: Record<string, unknown> } {
  const values: Record<string, unknown> = {
    ':o': outcome,
    ':t': new Date().toISOString(),
    ':e': Math.floor(Date.now() / 1000) + ttlSeconds,
  };
  const sets = ['outcome = :o', 'outcomeAt = :t', 'expiresAt = if_not_exists(expiresAt, :e)'];
  // Names are aliased because several (depth, bytes) are DynamoDB reserved words.
  const names: Record<string, string> = {};
  for (const key of OUTCOME_DETAIL_FIELDS) {
    const value = extra[key];
    if (value === undefined) continue;
    values[`:${key}`] = typeof value === 'string' ? value.slice(0, 500) : value;
    names[`#${key}`] = key;
    sets.push(`#${key} = :${key}`);
  }
  return { sets, names, values };
}

/** Record a URL's outcome on its first-seen record (creating it for seeds). */
export async function recordOutcome(
  table: string,
  crawlId: string,
  url: string,
  outcome: Outcome,
  extra: OutcomeDetail,
  ttlSeconds: number,
): Promise<void> {
  const { sets, names, values } = outcomeUpdate(outcome, extra, ttlSeconds);
  await ddb.send(
    new UpdateCommand({
      TableName: table,
      Key: { crawlId, url },
      UpdateExpression: `SET ${sets.join(', ')}`,
      ExpressionAttributeValues: values,
      ...(Object.keys(names).length > 0 ? { ExpressionAttributeNames: names } : {}),
    }),
  );
}
