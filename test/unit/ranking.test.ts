import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import {
  type AthenaClient,
  GetQueryExecutionCommand,
  GetQueryResultsCommand,
  StartQueryExecutionCommand,
} from '@aws-sdk/client-athena';
import { describe, expect, it } from 'vitest';
import {
  batchKey,
  edgeLogBody,
  edgeLogKey,
  linksPacking,
  outLinks,
  pageLinksItems,
} from '../../functions/crawl/link-graph';
import { countParts } from '../../functions/crawl/rank-record';
import {
  LinksMessage,
  MAX_LINKS_PER_MESSAGE,
  pageLinksMessage,
  pagesOf,
} from '../../functions/crawl/schemas';
import { parseMessage } from '../../functions/kit/envelope';
import {
  compareRankings,
  exactRankingAthena,
  formatRanking,
  INLINKS_SQL,
  rankingOf,
  rankWithDuckDb,
  sqlString,
} from '../../tooling/ranking';

describe('the link graph', () => {
  it('keeps distinct in-scope links other than the page itself', () => {
    const src = 'http://a.test/';
    expect(
      outLinks(
        src,
        [
          'http://a.test/x',
          'http://a.test/x',
          src,
          'http://b.test/y',
          'http://c.test/z',
          'http://a.test:8080/p',
        ],
        ['a.test', 'b.test'],
      ),
    ).toEqual(['http://a.test/x', 'http://b.test/y']);
  });

  it('sends nothing for a page without links, and splits a page past the message cap', () => {
    expect(pageLinksItems('c', 'k', 'http://a.test/', [], false)).toEqual([]);
    const links = Array.from({ length: MAX_LINKS_PER_MESSAGE + 1 }, (_, i) => `http://a.test/${i}`);
    const items = pageLinksItems('c', 'k', 'http://a.test/', links, true);
    expect(items.map((m) => m.page.links.length)).toEqual([MAX_LINKS_PER_MESSAGE, 1]);
    expect(items.flatMap((m) => m.page.links)).toEqual(links);
    expect(items.every((m) => m.page.repeat)).toBe(true);
  });

  it('packs the pages sent together into one valid message per crawl, within the link cap, losing none', () => {
    const page = (crawlId: string, n: number, count: number) =>
      pageLinksItems(
        crawlId,
        `k-${crawlId}`,
        `http://a.test/p${n}`,
        Array.from({ length: count }, (_, i) => `http://a.test/${n}/${i}`),
        n % 2 === 0,
      );
    const items = [...page('c1', 1, 200), ...page('c2', 2, 10), ...page('c1', 3, 200), ...page('c1', 4, 200)];
    const packed = linksPacking.pack(items);
    // c1's three pages: 400 links fit one message, the third starts another; c2's page has its own.
    expect(packed.map((m) => m.items)).toEqual([[0, 2], [1], [3]]);
    const messages = packed.map((m) => parseMessage(LinksMessage, m.body));
    expect(messages.map((m) => [m.type, m.crawlId, m.correlationId])).toEqual([
      ['pages.links', 'c1', 'k-c1'],
      ['pages.links', 'c2', 'k-c2'],
      ['pages.links', 'c1', 'k-c1'],
    ]);
    // Every item's page is in the message that carries it, as it was sent.
    for (const [i, m] of packed.entries())
      expect(pagesOf(messages[i] as LinksMessage)).toEqual(m.items.map((j) => items[j]?.page));
    // Over the cap in all is refused.
    const over = linksPacking.pack([...page('c1', 5, MAX_LINKS_PER_MESSAGE), ...page('c1', 6, 1)]);
    expect(over).toHaveLength(2);
    const tooMany = JSON.parse(over[0]?.body ?? '{}');
    tooMany.payload.pages.push({ src: 'http://a.test/', links: ['http://a.test/z'], repeat: false });
    expect(() => parseMessage(LinksMessage, JSON.stringify(tooMany))).toThrow(/at most 500 links/);
  });

  it('still reads a page-links message of one page, as sent before messages were packed', () => {
    const old = pageLinksMessage('c', 'k', {
      src: 'http://a.test/',
      links: ['http://a.test/x'],
      repeat: false,
    });
    expect(pagesOf(parseMessage(LinksMessage, JSON.stringify(old)))).toEqual([old.payload]);
  });

  it('names an edge log object by its batch, whatever the order, under the crawl partition', () => {
    const batch = batchKey(['m2', 'm1']);
    expect(batch).toBe(batchKey(['m1', 'm2']));
    expect(batch).not.toBe(batchKey(['m1', 'm3']));
    expect(edgeLogKey('crawl-1', batch)).toMatch(/^edges\/crawl_id=crawl-1\/[0-9a-f]{32}\.json\.gz$/);
  });

  it('writes one JSON line per edge, gzip-compressed', () => {
    const page = { src: 'http://a.test/', links: ['http://a.test/x', 'http://a.test/y'] };
    const lines = gunzipSync(edgeLogBody([page]))
      .toString()
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines).toEqual([
      { src: 'http://a.test/', dst: 'http://a.test/x' },
      { src: 'http://a.test/', dst: 'http://a.test/y' },
    ]);
    expect(gunzipSync(edgeLogBody([])).toString()).toBe('');
  });
});

/** An edge log laid out as in S3, for DuckDB. */
async function edgeLogDir(files: Record<string, string>): Promise<string> {
  const dir = mkdtempSync(path.join(tmpdir(), 'edges-test-'));
  for (const [key, body] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(dir, key)), { recursive: true });
    const { gzipSync } = await import('node:zlib');
    await writeFile(path.join(dir, key), gzipSync(body));
  }
  return dir;
}

const line = (src: string, dst: string) => `${JSON.stringify({ src, dst })}\n`;

/** An Athena client that records the query it is given and answers with `rows`. */
function fakeAthena(rows: string[][]) {
  const started: StartQueryExecutionCommand['input'][] = [];
  const client = {
    async send(command: unknown) {
      if (command instanceof StartQueryExecutionCommand) {
        started.push(command.input);
        return { QueryExecutionId: 'q1' };
      }
      if (command instanceof GetQueryExecutionCommand)
        return { QueryExecution: { Status: { State: 'SUCCEEDED' } } };
      if (command instanceof GetQueryResultsCommand)
        return {
          ResultSet: {
            Rows: [['url', 'inlinks'], ...rows].map((r) => ({ Data: r.map((v) => ({ VarCharValue: v })) })),
          },
        };
      throw new Error('unexpected command');
    },
  } as unknown as AthenaClient;
  return { client, started };
}

describe('the exact ranking: one SQL file, two engines', () => {
  it('counts distinct linking pages on DuckDB, within one crawl, without self-links', async () => {
    const dir = await edgeLogDir({
      'edges/crawl_id=c1/a.json.gz': line('p1', 'x') + line('p2', 'x') + line('p1', 'y') + line('y', 'y'),
      // The same edges logged again by a retried batch, and another crawl's.
      'edges/crawl_id=c1/b.json.gz': line('p1', 'x') + line('p1', 'y'),
      'edges/crawl_id=c2/c.json.gz': line('p9', 'x') + line('p8', 'x') + line('p7', 'x'),
    });
    expect(await rankWithDuckDb(dir, 'c1')).toEqual([
      { url: 'x', inlinks: 2 },
      { url: 'y', inlinks: 1 },
    ]);
    expect(await rankWithDuckDb(dir, 'c2')).toEqual([{ url: 'x', inlinks: 3 }]);
    // A crawl id is a bound parameter, never SQL.
    expect(await rankWithDuckDb(dir, "c1' OR '1'='1")).toEqual([]);
  });

  it('sends Athena the text of sql/inlinks.sql, with the crawl id as a quoted execution parameter', async () => {
    const { client, started } = fakeAthena([
      ['x', '2'],
      ['y', '1'],
    ]);
    const ranked = await exactRankingAthena(client, { workGroup: 'wg', database: 'db' }, 'c1', { pollMs: 1 });
    expect(ranked).toEqual([
      { url: 'x', inlinks: 2 },
      { url: 'y', inlinks: 1 },
    ]);
    expect(started).toEqual([
      {
        QueryString: readFileSync(INLINKS_SQL, 'utf8'),
        WorkGroup: 'wg',
        QueryExecutionContext: { Database: 'db' },
        ExecutionParameters: ["'c1'"],
      },
    ]);
    expect(sqlString("it's")).toBe("'it''s'");
  });

  it('runs whatever the SQL file says on both engines, so neither carries a query of its own', async () => {
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'sql-')), 'other.sql');
    writeFileSync(file, "SELECT 'only' AS url, 42 AS inlinks FROM edges WHERE crawl_id = ? LIMIT 1\n");
    const dir = await edgeLogDir({ 'edges/crawl_id=c1/a.json.gz': line('p', 'q') });
    expect(await rankWithDuckDb(dir, 'c1', file)).toEqual([{ url: 'only', inlinks: 42 }]);
    const { client, started } = fakeAthena([]);
    await exactRankingAthena(client, { workGroup: 'wg', database: 'db' }, 'c1', { pollMs: 1, sqlFile: file });
    expect(started[0]?.QueryString).toBe(readFileSync(file, 'utf8'));
  });

  it('reports a failed Athena query with its reason', async () => {
    const client = {
      async send(command: unknown) {
        if (command instanceof StartQueryExecutionCommand) return { QueryExecutionId: 'q2' };
        return { QueryExecution: { Status: { State: 'FAILED', StateChangeReason: 'TABLE_NOT_FOUND' } } };
      },
    } as unknown as AthenaClient;
    await expect(
      exactRankingAthena(client, { workGroup: 'wg', database: 'db' }, 'c1', { pollMs: 1 }),
    ).rejects.toThrow(/q2 FAILED: TABLE_NOT_FOUND/);
  });
});

describe('batch count items', () => {
  it('splits the counts of a batch into parts that each fit a DynamoDB item, keeping every entry once', () => {
    const url = (i: number) => `http://a.test/${'p'.repeat(2000)}/${i}`;
    const entries: Array<[string, number]> = Array.from({ length: 400 }, (_, i) => [url(i), i + 1]);
    const parts = countParts(entries);
    expect(parts.length).toBeGreaterThan(1);
    for (const part of parts) expect(Buffer.byteLength(JSON.stringify(part))).toBeLessThan(350 * 1024);
    expect(parts.flat()).toEqual(entries);
    expect(countParts([])).toEqual([[]]);
  });
});

describe('comparing rankings', () => {
  it('separates links counted twice from links not counted yet, and compares the top N', () => {
    const exact = rankingOf(
      new Map([
        ['a', 5],
        ['b', 3],
        ['c', 1],
      ]),
    );
    const online = rankingOf(
      new Map([
        ['a', 5],
        ['b', 6],
        ['d', 1],
      ]),
    );
    expect(compareRankings(online, exact, 2)).toEqual({
      overcount: 4,
      missing: 1,
      urlsDiffering: 3,
      maxDiff: 3,
      topOverlap: 2,
      topN: 2,
    });
    expect(compareRankings(exact, exact)).toMatchObject({ overcount: 0, missing: 0, urlsDiffering: 0 });
  });

  it('orders by count, then URL, and numbers the lines', () => {
    expect(
      rankingOf(
        new Map([
          ['b', 2],
          ['a', 2],
          ['c', 10],
        ]),
      ).map((r) => r.url),
    ).toEqual(['c', 'a', 'b']);
    expect(
      formatRanking(
        rankingOf(
          new Map([
            ['x', 10],
            ['y', 9],
          ]),
        ),
      ),
    ).toBe(' 1. 10  x\n 2.  9  y');
  });
});
