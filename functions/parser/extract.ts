import { Parser } from 'htmlparser2';
import { canonicalizeUrl } from '../crawl/url';

export interface ExtractLimits {
  /** Characters of visible text kept. */
  readonly maxTextChars: number;
  /** Distinct outgoing links kept. */
  readonly maxLinks: number;
  /**
   * Open elements nested at once. htmlparser2 keeps open elements in an array it searches and shifts on
   * every tag, so unclosed nesting costs O(depth) per tag: 650,000 unclosed tags take minutes.
   * Browsers stop nesting at a few hundred levels (Chromium: 512).
   */
  readonly maxDepth: number;
  /** Elements parsed in all. */
  readonly maxElements: number;
  /** Wall-clock budget for the parse, checked every 1,000 elements and between chunks. */
  readonly maxParseMs: number;
}

// Text is bounded so a page record stays near 2 KB: DynamoDB bills writes per started KB.
export const DEFAULT_LIMITS: ExtractLimits = {
  maxTextChars: 1_000,
  maxLinks: 500,
  maxDepth: 1_000,
  maxElements: 200_000,
  maxParseMs: 5_000,
};

/** Why extraction stopped before the end of the document, when it did. */
export type ExtractCut = 'depth' | 'elements' | 'time';

/** The document is fed to the parser in slices, so a cut or the time budget is noticed between them. */
const CHUNK_CHARS = 64 * 1024;

export interface ExtractedPage {
  readonly title?: string;
  readonly description?: string;
  /** rel=canonical, resolved and canonicalised. */
  readonly canonical?: string;
  readonly text: string;
  /** Canonical, deduplicated http(s) links in document order. */
  readonly links: readonly string[];
  /** Links that were dropped as unparseable or non-http(s). */
  readonly invalidLinks: number;
  /** True when the page asks robots not to follow its links (meta robots nofollow). */
  readonly nofollow: boolean;
  /** Set when a limit stopped the parse: what was extracted before it is kept. */
  readonly cut?: ExtractCut;
}

// A second <title> is not page text either; the first one's text goes to `title` before this is checked.
const SKIP_TEXT = new Set(['script', 'style', 'noscript', 'template', 'svg', 'head', 'title']);

/**
 * Extract what the pipeline stores from an HTML document, in one streaming pass with htmlparser2.
 * Links resolve against the first <base href> (if it is itself valid) or the page URL, and are canonicalised
 * and deduplicated. Text is whitespace-collapsed and bounded. The parser's work is bounded too (nesting
 * depth, element count, time): past a limit it stops, keeps what it found and says which limit in `cut`.
 */
export function extractPage(
  html: string,
  pageUrl: string,
  overrides: Partial<ExtractLimits> = {},
): ExtractedPage {
  const limits: ExtractLimits = { ...DEFAULT_LIMITS, ...overrides };
  const deadline = Date.now() + limits.maxParseMs;
  let depth = 0;
  let elements = 0;
  let cut: ExtractCut | undefined;
  let base = pageUrl;
  let baseSeen = false;
  let title = '';
  let inTitle = false;
  let titleDone = false;
  let description: string | undefined;
  let canonicalHref: string | undefined;
  let nofollow = false;
  let skipDepth = 0;
  let text = '';
  const rawLinks: Array<{ href: string; base: string }> = [];

  const parser = new Parser(
    {
      onopentag(name, attrs) {
        if (cut) return;
        depth++;
        elements++;
        if (depth > limits.maxDepth) cut = 'depth';
        else if (elements > limits.maxElements) cut = 'elements';
        else if (elements % 1_000 === 0 && Date.now() > deadline) cut = 'time';
        if (cut) {
          parser.pause();
          return;
        }
        if (SKIP_TEXT.has(name)) skipDepth++;
        switch (name) {
          case 'base':
            if (!baseSeen && attrs.href) {
              baseSeen = true;
              try {
                base = new URL(attrs.href, pageUrl).toString();
              } catch {
                // An invalid <base href> is ignored, as browsers do.
              }
            }
            break;
          case 'title':
            if (!titleDone) inTitle = true;
            break;
          case 'meta': {
            const metaName = (attrs.name ?? '').toLowerCase();
            if (metaName === 'description' && description === undefined) description = attrs.content?.trim();
            if (metaName === 'robots' && /\bnofollow\b|\bnone\b/i.test(attrs.content ?? '')) nofollow = true;
            break;
          }
          case 'link':
            if (canonicalHref === undefined && /\bcanonical\b/i.test(attrs.rel ?? '') && attrs.href)
              canonicalHref = attrs.href;
            break;
          case 'a':
          case 'area':
            if (attrs.href !== undefined && rawLinks.length < limits.maxLinks * 4)
              rawLinks.push({ href: attrs.href, base });
            break;
        }
      },
      ontext(data) {
        if (inTitle) {
          if (title.length < 4 * TITLE_CHARS) title += data;
        } else if (skipDepth === 0 && text.length < limits.maxTextChars * 2) text += data;
      },
      onclosetag(name) {
        if (depth > 0) depth--;
        if (SKIP_TEXT.has(name) && skipDepth > 0) skipDepth--;
        if (name === 'title' && inTitle) {
          inTitle = false;
          titleDone = true;
        }
        if (BLOCK.has(name)) text += ' ';
      },
    },
    { decodeEntities: true, lowerCaseTags: true, lowerCaseAttributeNames: true },
  );
  for (let at = 0; at < html.length && !cut; at += CHUNK_CHARS) {
    parser.write(html.slice(at, at + CHUNK_CHARS));
    if (!cut && Date.now() > deadline && at + CHUNK_CHARS < html.length) cut = 'time';
  }
  // After a cut the open elements are abandoned, not closed one by one.
  if (!cut) parser.end();

  const links: string[] = [];
  const seen = new Set<string>();
  let invalidLinks = 0;
  for (const { href, base: linkBase } of rawLinks) {
    if (links.length >= limits.maxLinks) break;
    if (/^\s*(mailto|javascript|tel|data):/i.test(href)) continue;
    try {
      const url = canonicalizeUrl(href, linkBase);
      if (!seen.has(url)) {
        seen.add(url);
        links.push(url);
      }
    } catch {
      invalidLinks++;
    }
  }
  let canonical: string | undefined;
  if (canonicalHref) {
    try {
      canonical = canonicalizeUrl(canonicalHref, base);
    } catch {
      canonical = undefined;
    }
  }
  return {
    title: collapsedPrefix(title, TITLE_CHARS) || undefined,
    description: description ? collapsedPrefix(description, 300) : undefined,
    canonical,
    text: collapsedPrefix(text, limits.maxTextChars),
    links,
    invalidLinks,
    nofollow,
    ...(cut ? { cut } : {}),
  };
}

const TITLE_CHARS = 300;

const collapse = (s: string) => s.replace(/\s+/g, ' ').trim();

/**
 * `collapse(s).slice(0, max)`, without collapsing all of `s`: one text node of a page can be megabytes, of
 * which a thousand characters are kept (the whole-string regex was a tenth of the parser's CPU in the
 * bench). A prefix of `s` collapses to a prefix of the whole collapsed, so windows of `s` growing fourfold
 * are collapsed until the result is longer than `max` + 1, where trimming the end can no longer reach it.
 */
export function collapsedPrefix(s: string, max: number): string {
  for (let raw = Math.max(4 * max, 1024); ; raw *= 4) {
    if (raw >= s.length) return collapse(s).slice(0, max);
    const head = s.slice(0, raw).replace(/\s+/g, ' ').trimStart();
    if (head.length > max + 1) return head.slice(0, max);
  }
}

const BLOCK = new Set([
  'p',
  'div',
  'br',
  'li',
  'h1',
  'h2',
  'h3',
  'h4',
  'h5',
  'h6',
  'td',
  'th',
  'tr',
  'section',
  'article',
]);
