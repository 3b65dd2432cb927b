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
  | 'body-missing';

export interface OutcomeDetail {
  readonly depth?: number;
  readonly httpStatus?: number;
  readonly finalUrl?: string;
  readonly detail?: string;
  readonly bytes?: number;
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
  const values: Record<string, unknown> = {
    ':o': outcome,
    ':t': new Date().toISOString(),
    ':e': Math.floor(Date.now() / 1000) + ttlSeconds,
  };
  const sets = ['outcome = :o', 'outcomeAt = :t', 'expiresAt = if_not_exists(expiresAt, :e)'];
  // Names are aliased because several (depth, bytes) are DynamoDB reserved words.
  const names: Record<string, string> = {};
  for (const [key, value] of Object.entries(extra)) {
    if (value === undefined) continue;
    values[`:${key}`] = typeof value === 'string' ? value.slice(0, 500) : value;
    names[`#${key}`] = key;
    sets.push(`#${key} = :${key}`);
  }
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
