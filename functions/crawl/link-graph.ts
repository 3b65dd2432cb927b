import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { MAX_LINKS_PER_MESSAGE, type PageLinksMessage, pageLinksMessage } from './schemas';
import { hostKey } from './url';

/**
 * The crawl's link graph, as the ranking sees it: an edge from a parsed page to each distinct in-scope
 * URL it links to, itself excluded. One definition, used by the parser (what it sends), the ranker (what it
 * counts and logs) and the tests (what a correct ranking is computed from).
 */
export function outLinks(src: string, links: readonly string[], allowedHosts: readonly string[]): string[] {
  const hosts = new Set(allowedHosts);
  const out = new Set<string>();
  for (const link of links) if (link !== src && hosts.has(hostKey(link))) out.add(link);
  return [...out];
}

/**
 * A page's out-links as page-links messages: none for a page without any, one unless the page has more
 * links than a message holds.
 */
export function pageLinksMessages(
  crawlId: string,
  correlationId: string,
  src: string,
  links: readonly string[],
  repeat: boolean,
): PageLinksMessage[] {
  const messages: PageLinksMessage[] = [];
  for (let i = 0; i < links.length; i += MAX_LINKS_PER_MESSAGE)
    messages.push(
      pageLinksMessage(crawlId, correlationId, {
        src,
        links: links.slice(i, i + MAX_LINKS_PER_MESSAGE),
        repeat,
      }),
    );
  return messages;
}

/**
 * The edge log: gzip'd JSON lines, one `{"src","dst"}` per edge, under `edges/crawl_id=<crawlId>/`
 * (Hive-style, so Athena's partition projection and DuckDB's hive_partitioning both read the crawl from
 * the path). One object per crawl per ranker batch, never one per page.
 */
export const EDGE_LOG_PREFIX = 'edges/';

export const edgeLogPrefix = (crawlId: string): string => `${EDGE_LOG_PREFIX}crawl_id=${crawlId}/`;

/**
 * The object key of one batch's edges: named by the batch (batchKey of its message ids), so a retried batch
 * with the same messages writes the same object again. A batch made of other messages writes another object; the exact
 * ranking counts distinct source pages, so an edge logged twice is still counted once.
 */
export function edgeLogKey(crawlId: string, batch: string): string {
  return `${edgeLogPrefix(crawlId)}${batch}.json.gz`;
}

/** A name for a batch of messages, the same whatever their order: a retry of the same batch gets it again. */
export function batchKey(messageIds: readonly string[]): string {
  return createHash('sha256')
    .update([...messageIds].sort().join('\n'))
    .digest('hex')
    .slice(0, 32);
}

/** The gzip'd JSON-lines body of an edge log object. */
export function edgeLogBody(messages: readonly PageLinksMessage[]): Buffer {
  const lines: string[] = [];
  for (const m of messages)
    for (const dst of m.payload.links) lines.push(JSON.stringify({ src: m.payload.src, dst }));
  return gzipSync(lines.length > 0 ? `${lines.join('\n')}\n` : '');
}
