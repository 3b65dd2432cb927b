// zod/mini: the same validation as zod, tree-shakable; full zod adds ~440 KB to each Lambda bundle.
import * as z from 'zod/mini';
import { InvalidMessageError } from './errors';

/**
 * Message contracts, imported by every producer and consumer (the schema registry of this pipeline).
 * Each message is a versioned envelope around a typed payload. A consumer rejects a version it does
 * not know instead of guessing; add a new version beside the old one to evolve a payload.
 */
const envelope = <T extends string, P extends z.ZodMiniType>(type: T, payload: P) =>
  z.object({
    type: z.literal(type),
    version: z.literal(1),
    crawlId: z
      .string()
      .check(
        z.minLength(1),
        z.maxLength(64),
        z.regex(/^[A-Za-z0-9._-]+$/, 'crawlId may hold letters, digits, ".", "_" and "-"'),
      ),
    correlationId: z.string().check(z.minLength(1), z.maxLength(128)),
    sentAt: z.iso.datetime(),
    payload,
  });

const httpUrl = z.string().check(
  z.maxLength(2048),
  z.refine(
    (u) => URL.canParse(u) && /^https?:$/.test(new URL(u).protocol),
    'must be an absolute http(s) URL',
  ),
);

/** collect: one URL to fetch. Sent to the FIFO frontier with group = host and dedup id = hash(crawlId, URL). */
export const FrontierMessage = envelope(
  'frontier.url',
  z.object({
    url: httpUrl,
    depth: z.int().check(z.minimum(0), z.maximum(1000)),
    /** The page that linked here; absent for seeds. */
    discoveredFrom: z.optional(z.string().check(z.maxLength(2048))),
  }),
);
export type FrontierMessage = z.infer<typeof FrontierMessage>;

/** A fetched body, either inline (compressed, base64) or in S3 (claim check). */
export const BodyRef = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('inline'), encoding: z.literal('br'), data: z.string() }),
  z.object({
    kind: z.literal('s3'),
    encoding: z.literal('br'),
    bucket: z.string().check(z.minLength(1)),
    key: z.string().check(z.minLength(1)),
  }),
]);
export type BodyRef = z.infer<typeof BodyRef>;

/** parse: a fetched HTML page to parse and store. */
export const ParseMessage = envelope(
  'parse.page',
  z.object({
    url: httpUrl,
    finalUrl: httpUrl,
    depth: z.int().check(z.minimum(0), z.maximum(1000)),
    httpStatus: z.int(),
    contentType: z.string().check(z.maxLength(256)),
    /** Epoch milliseconds of the fetch; a stored page is only replaced by a newer fetch. */
    fetchedAt: z.int().check(z.positive()),
    body: BodyRef,
  }),
);
export type ParseMessage = z.infer<typeof ParseMessage>;

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

/** Best-effort ids from a message that failed validation, for its log line and DLQ record. */
export function looseIds(body: string): { crawlId?: string; correlationId?: string } {
  try {
    const j = JSON.parse(body) as Record<string, unknown>;
    return {
      crawlId: typeof j.crawlId === 'string' ? j.crawlId.slice(0, 64) : undefined,
      correlationId: typeof j.correlationId === 'string' ? j.correlationId.slice(0, 128) : undefined,
    };
  } catch {
    return {};
  }
}
