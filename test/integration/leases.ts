import { type DynamoDBDocumentClient, paginateScan, UpdateCommand } from '@aws-sdk/lib-dynamodb';

/**
 * Put an in-progress idempotency lease on a URL record, as a crawler attempt holding it would leave it:
 * live for `ms` more milliseconds (negative: already run out), held by `owner` when given.
 */
export function holdLease(
  ddb: DynamoDBDocumentClient,
  table: string,
  key: { crawlId: string; url: string },
  ms: number,
  owner?: string,
) {
  return ddb.send(
    new UpdateCommand({
      TableName: table,
      Key: key,
      UpdateExpression: `SET idemStatus = :s, idemExpiry = :e, idemLeaseMs = :l${owner ? ', idemOwner = :o' : ''}`,
      ExpressionAttributeValues: {
        ':s': 'INPROGRESS',
        ':e': Math.floor(Date.now() / 1000) + 3600,
        ':l': Date.now() + ms,
        ...(owner ? { ':o': owner } : {}),
      },
    }),
  );
}

/** Frontier group leases (see GroupAttempt) still live: an attempt whose release was lost keeps one. */
export async function liveGroupLeases(ddb: DynamoDBDocumentClient, table: string): Promise<number> {
  let live = 0;
  for await (const page of paginateScan(
    { client: ddb },
    {
      TableName: table,
      FilterExpression: 'begins_with(crawlId, :p) AND leaseUntil > :now',
      ExpressionAttributeValues: { ':p': '#frontier-group#', ':now': Date.now() },
    },
  ))
    live += page.Count ?? 0;
  return live;
}

/** The message groups that have a frontier group lease item, live or given back: each was leased once. */
export async function leasedGroups(ddb: DynamoDBDocumentClient, table: string): Promise<string[]> {
  const groups: string[] = [];
  for await (const page of paginateScan(
    { client: ddb },
    {
      TableName: table,
      FilterExpression: 'begins_with(crawlId, :p)',
      ExpressionAttributeValues: { ':p': '#frontier-group#' },
    },
  ))
    for (const item of page.Items ?? []) groups.push(String(item.crawlId).slice('#frontier-group#'.length));
  return groups.sort();
}
