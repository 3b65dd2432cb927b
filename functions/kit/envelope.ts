// zod/mini: the same validation as zod, tree-shakable; full zod adds ~440 KB to each Lambda bundle.
import * as z from 'zod/mini';
import { InvalidMessageError } from './errors';

/**
 * The kit's message envelope: a type, a version, a correlation id and a send time around a typed payload.
 * A consumer rejects a version it does not know instead of guessing; add a new version beside the old one
 * to evolve a payload. A pipeline adds its own ids at the top level with `ids` (the crawler its crawlId).
 */
export function envelope<
  T extends string,
  P extends z.ZodMiniType,
  I extends Record<string, z.ZodMiniType> = Record<never, z.ZodMiniType>,
>(type: T, payload: P, ids?: I) {
  const base = z.object({
    type: z.literal(type),
    version: z.literal(1),
    correlationId: z.string().check(z.minLength(1), z.maxLength(128)),
    sentAt: z.iso.datetime(),
    payload,
  });
  return z.extend(base, (ids ?? {}) as I);
}

/** An id that is safe in keys, logs and dedup ids: 1 to 64 of letters, digits, ".", "_" and "-". */
export const safeId = (name: string) =>
  z
    .string()
    .check(
      z.minLength(1),
      z.maxLength(64),
      z.regex(/^[A-Za-z0-9._-]+$/, `${name} may hold letters, digits, ".", "_" and "-"`),
    );

/** The envelope fields every message carries besides its payload and ids. */
export function envelopeFields<T extends string>(type: T, correlationId: string) {
  return { type, version: 1 as const, correlationId, sentAt: new Date().toISOString() };
}

/** Parse an SQS body against a schema; any failure is an InvalidMessageError carrying the reason. */
export function parseMessage<S extends z.ZodMiniType>(schema: S, body: string): z.infer<S> {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch (error) {
    throw new InvalidMessageError(`body is not JSON: ${(error as Error).message}`);
  }
  const result = schema.safeParse(json);
  if (!result.success) {
    const issues = result.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new InvalidMessageError(`schema validation failed: ${issues}`);
  }
  return result.data;
}

/**
 * Best-effort ids from a message that failed validation, for its log line: every top-level string field
 * whose name ends in "Id" (correlationId, a crawlId, an eventId), cut to 128 characters.
 */
export function looseIds(body: string): Record<string, string> {
  try {
    const j = JSON.parse(body) as unknown;
    if (!j || typeof j !== 'object' || Array.isArray(j)) return {};
    const ids: Record<string, string> = {};
    for (const [k, v] of Object.entries(j as Record<string, unknown>).slice(0, 20))
      if (/Id$/.test(k) && typeof v === 'string') ids[k.slice(0, 64)] = v.slice(0, 128);
    return ids;
  } catch {
    return {};
  }
}
