/** The value of a DynamoDB TTL attribute (epoch seconds) for an item that should live `ttlSeconds` from `nowMs`. */
export const expiresAt = (ttlSeconds: number, nowMs = Date.now()): number =>
  Math.floor(nowMs / 1000) + ttlSeconds;
