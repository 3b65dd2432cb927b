import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import type { Packing } from '../kit/send-batcher';
import { MAX_LINKS_PER_MESSAGE, type PageLinks, pagesLinksMessage } from './schemas';
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

/** One page's out-links (or a part of them) on their way to the ranker, with the crawl they belong to. */
export interface LinksItem {
  readonly crawlId: string;
  readonly correlationId: string;
  readonly page: PageLinks;
}

/**
 * A page's out-links as items for the parser's links sender: none for a page without any, one unless the
 * page has more links than a message holds.
 */
export function pageLinksItems(
  crawlId: string,
  correlationId: string,
  src: string,
  links: readonly string[],
  repeat: boolean,
): LinksItem[] {
  const items: LinksItem[] = [];
  for (let i = 0; i < links.length; i += MAX_LINKS_PER_MESSAGE)
    items.push({
      crawlId,
      correlationId,
      page: { src, links: links.slice(i, i + MAX_LINKS_PER_MESSAGE), repeat },
    });
  return items;
}

/**
 * How the pages parsed side by side share pages-links messages: one per crawl (and correlation id), filled
 * in order up to MAX_LINKS_PER_MESSAGE links, so about ten pages of fifty links go out as one message.
 */
export const linksPacking: Packing<LinksItem> = {
  pack(items) {
    const out: Array<{ body: string; items: number[] }> = [];
    const open = new Map<string, { pages: PageLinks[]; items: number[]; links: number; item: LinksItem }>();
    const close = (key: string) => {
      const m = open.get(key);
      if (!m) return;
      open.delete(key);
      out.push({
        body: JSON.stringify(pagesLinksMessage(m.item.crawlId, m.item.correlationId, m.pages)),
        items: m.items,
      });
    };
    for (const [i, item] of items.entries()) {
      const key = JSON.stringify([item.crawlId, item.correlationId]);
      const current = open.get(key);
      if (current && current.links + item.page.links.length > MAX_LINKS_PER_MESSAGE) close(key);
      const m = open.get(key) ?? { pages: [], items: [], links: 0, item };
      m.pages.push(item.page);
      m.items.push(i);
      m.links += item.page.links.length;
      open.set(key, m);
    }
    for (const key of [...open.keys()]) close(key);
    return out;
  },
};

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
export function edgeLogBody(pages: readonly Pick<PageLinks, 'src' | 'links'>[]): Buffer {
  const lines: string[] = [];
  for (const page of pages) for (const dst of page.links) lines.push(JSON.stringify({ src: page.src, dst }));
  return gzipSync(lines.length > 0 ? `${lines.join('\n')}\n` : '');
}
