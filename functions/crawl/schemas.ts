// zod/mini: the same validation as zod, tree-shakable; full zod adds ~440 KB to each Lambda bundle.
import * as z from 'zod/mini';
import { envelope, envelopeFields, safeId } from '../kit/envelope';

/**
 * The crawler's message contracts, imported by every producer and consumer (the schema registry of this
 * pipeline): the kit's versioned envelope, with the crawlId every crawler message carries.
 */
const crawlEnvelope = <T extends string, P extends z.ZodMiniType>(type: T, payload: P) =>
  envelope(type, payload, { crawlId: safeId('crawlId') });

const httpUrl = z.string().check(
  z.maxLength(2048),
  z.refine(
    (u) => URL.canParse(u) && /^https?:$/.test(new URL(u).protocol),
    'must be an absolute http(s) URL',
  ),
);

/** collect: one URL to fetch. Sent to the FIFO frontier with group = host and dedup id = hash(crawlId, URL). */
export const FrontierMessage = crawlEnvelope(
  'frontier.url',
  z.object({
    url: httpUrl,
    depth: z.int().check(z.minimum(0), z.maximum(1000)),
    /** The page that linked here; absent for seeds. */
    discoveredFrom: z.optional(z.string().check(z.maxLength(2048))),
    /**
     * Fetch attempts earlier messages for this URL made: set when a timed-out URL was sent to the back of
     * its host's group (requeueFrontier), absent on a URL's first message.
     */
    attempts: z.optional(z.int().check(z.minimum(1), z.maximum(100))),
    /**
     * The first message ever sent for this URL in its crawl: the page whose claim created the URL's record
     * sends it in the attempt that made the claim, so no message for the URL came before it and its record
     * holds no completion. The crawler skips reading that record on the message's first receive.
     */
    fresh: z.optional(z.literal(true)),
  }),
);
export type FrontierMessage = z.infer<typeof FrontierMessage>;

/** The binary message attribute a parse message carries its compressed body in (BodyRef kind 'attribute'). */
export const BODY_ATTRIBUTE = 'body';

/**
 * A fetched body: compressed, in the message's binary attribute `body` (SQS bills its raw bytes, a quarter
 * fewer than base64 in the JSON), in S3 (claim check), or inline as base64 (what crawlers before the
 * attribute sent; still read, so messages in flight across a deploy parse).
 */
export const BodyRef = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('attribute'), encoding: z.literal('br') }),
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
export const ParseMessage = crawlEnvelope(
  'parse.page',
  z.object({
    url: httpUrl,
    finalUrl: httpUrl,
    depth: z.int().check(z.minimum(0), z.maximum(1000)),
    httpStatus: z.int(),
    contentType: z.string().check(z.maxLength(256)),
    /** Epoch milliseconds of the fetch; a stored page is only replaced by a newer fetch. */
    fetchedAt: z.int().check(z.positive()),
    /** The page that discovered the URL (its claim), so the parser sizes the URL record it writes. */
    discoveredFrom: z.optional(z.string().check(z.maxLength(2048))),
    body: BodyRef,
  }),
);
export type ParseMessage = z.infer<typeof ParseMessage>;

/** The keys every log line about a crawler message carries. */
export const crawlLogKeys = (m: { crawlId: string; correlationId: string }) => ({
  crawlId: m.crawlId,
  correlationId: m.correlationId,
});

/** Build a parse message: the one place its envelope is filled in. */
export function parsePageMessage(
  crawlId: string,
  correlationId: string,
  payload: ParseMessage['payload'],
): ParseMessage {
  return { ...envelopeFields('parse.page', correlationId), crawlId, payload };
}

/** Out-links per page-links message: the parser's link cap, so one page is usually one message. */
export const MAX_LINKS_PER_MESSAGE = 500;

/** One page's out-links: a page-links message's payload, and each page of a pages-links message. */
const PageLinks = z.object({
  src: httpUrl,
  links: z.array(httpUrl).check(z.maxLength(MAX_LINKS_PER_MESSAGE)),
  repeat: z.boolean(),
});
export type PageLinks = z.infer<typeof PageLinks>;

/**
 * rank: one parsed page's in-scope out-links, for the online inbound-link counts and the edge log.
 * `repeat` says this page's links may have been sent before (a redelivered parse, or a page stored before):
 * the ranker still counts them, and adds them to the crawl's over-count bound.
 */
export const PageLinksMessage = crawlEnvelope('page.links', PageLinks);
export type PageLinksMessage = z.infer<typeof PageLinksMessage>;

/**
 * rank: several parsed pages' out-links in one message (what the parser sends): one send, receive and
 * delete for the pages parsed side by side, instead of one each. At most MAX_LINKS_PER_MESSAGE links in
 * all, so a message stays small whatever the pages.
 */
export const PagesLinksMessage = crawlEnvelope(
  'pages.links',
  z.object({
    pages: z.array(PageLinks).check(
      z.minLength(1),
      z.refine(
        (pages) => pages.reduce((n, p) => n + p.links.length, 0) <= MAX_LINKS_PER_MESSAGE,
        `at most ${MAX_LINKS_PER_MESSAGE} links in all`,
      ),
    ),
  }),
);
export type PagesLinksMessage = z.infer<typeof PagesLinksMessage>;

/** What the ranker reads: either form (page-links messages may still be on the queue across a deploy). */
export const LinksMessage = z.discriminatedUnion('type', [PageLinksMessage, PagesLinksMessage]);
export type LinksMessage = z.infer<typeof LinksMessage>;

/** The pages a links message carries, in one shape. */
export const pagesOf = (message: LinksMessage): readonly PageLinks[] =>
  message.type === 'pages.links' ? message.payload.pages : [message.payload];

/** Build a pages-links message: the one place its envelope is filled in. */
export function pagesLinksMessage(
  crawlId: string,
  correlationId: string,
  pages: readonly PageLinks[],
): PagesLinksMessage {
  return { ...envelopeFields('pages.links', correlationId), crawlId, payload: { pages: [...pages] } };
}

/** Build a page-links message: the one place its envelope is filled in. */
export function pageLinksMessage(
  crawlId: string,
  correlationId: string,
  payload: PageLinksMessage['payload'],
): PageLinksMessage {
  return { ...envelopeFields('page.links', correlationId), crawlId, payload };
}
