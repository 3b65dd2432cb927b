import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  type AthenaClient,
  GetQueryExecutionCommand,
  GetQueryResultsCommand,
  StartQueryExecutionCommand,
} from '@aws-sdk/client-athena';
import { GetObjectCommand, paginateListObjectsV2, type S3Client } from '@aws-sdk/client-s3';
import { edgeLogPrefix } from '../functions/crawl/link-graph';
import { type RankSummary, readOnlineRanking } from '../functions/crawl/rank-record';
import type { Target } from './target';

/** The one SQL file of the exact ranking, run unchanged by both engines. */
export const INLINKS_SQL = path.join(import.meta.dirname, '..', 'sql', 'inlinks.sql');

/** The outputs the ranking reads; the Athena pair exists only on a deployed stack. */
export const RANKING_OUTPUTS = ['RanksTableName', 'EdgesBucketName'] as const;
export type RankingTarget = Target<(typeof RANKING_OUTPUTS)[number]>;

export interface Ranked {
  readonly url: string;
  readonly inlinks: number;
}

/** Highest count first, then by URL, so equal counts always list in the same order. */
export const byRank = (a: Ranked, b: Ranked): number => b.inlinks - a.inlinks || (a.url < b.url ? -1 : 1);

/** A count map as a ranking. */
export function rankingOf(counts: ReadonlyMap<string, number>): Ranked[] {
  return [...counts].map(([url, inlinks]) => ({ url, inlinks })).sort(byRank);
}

/** The online ranking: the ranker's counts, as they stand now, and the crawl's over-count bound. */
export async function onlineRanking(
  target: RankingTarget,
  crawlId: string,
): Promise<{ ranking: Ranked[]; summary: RankSummary }> {
  const { counts, summary } = await readOnlineRanking(target.ddb, target.outputs.RanksTableName, crawlId);
  return { ranking: rankingOf(counts), summary };
}

/** A crawl's edge log objects: key and size, every page of the listing. */
export async function listEdgeLog(
  s3: S3Client,
  bucket: string,
  crawlId: string,
): Promise<Array<{ key: string; size: number }>> {
  const objects: Array<{ key: string; size: number }> = [];
  const pages = paginateListObjectsV2({ client: s3 }, { Bucket: bucket, Prefix: edgeLogPrefix(crawlId) });
  for await (const page of pages)
    for (const o of page.Contents ?? []) objects.push({ key: o.Key as string, size: o.Size ?? 0 });
  return objects;
}

/** Copy a crawl's edge log objects into `dir`, keeping their keys (and so the crawl_id=… folder). */
export async function downloadEdgeLog(
  s3: S3Client,
  bucket: string,
  crawlId: string,
  dir: string,
): Promise<number> {
  const objects = await listEdgeLog(s3, bucket, crawlId);
  for (const { key } of objects) {
    const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    const file = path.join(dir, key);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(
      file,
      await (out.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray(),
    );
  }
  return objects.length;
}

/**
 * Run the ranking SQL on DuckDB (embedded, in this process) over edge log files under `dir`, laid out as in
 * S3. `edges` is a view with the same columns as the Athena table: src, dst and crawl_id from the path.
 */
export async function rankWithDuckDb(dir: string, crawlId: string, sqlFile = INLINKS_SQL): Promise<Ranked[]> {
  const { DuckDBInstance } = await import('@duckdb/node-api');
  const sql = await readFile(sqlFile, 'utf8');
  const instance = await DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  try {
    const files = path.join(dir, 'edges', '*', '*.json.gz').replaceAll("'", "''");
    await connection.run(
      `CREATE VIEW edges AS SELECT * FROM read_json('${files}', format = 'newline_delimited', columns = {src: 'VARCHAR', dst: 'VARCHAR'}, hive_partitioning = true)`,
    );
    const statement = await connection.prepare(sql);
    statement.bindVarchar(1, crawlId);
    const result = await statement.runAndReadAll();
    return result.getRowObjects().map((r) => ({ url: String(r.url), inlinks: Number(r.inlinks) }));
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}

/** The exact ranking on DuckDB over a target's S3 (the sandbox's, or LocalStack's). */
export async function exactRankingLocal(target: RankingTarget, crawlId: string): Promise<Ranked[]> {
  const dir = await mkdtemp(path.join(tmpdir(), 'edges-'));
  try {
    const objects = await downloadEdgeLog(target.s3, target.outputs.EdgesBucketName, crawlId, dir);
    return objects === 0 ? [] : await rankWithDuckDb(dir, crawlId);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Athena execution parameters are SQL literals: a string is quoted, its quotes doubled. */
export const sqlString = (value: string): string => `'${value.replaceAll("'", "''")}'`;

/**
 * The exact ranking on Athena: the same SQL file, with the crawl id as an execution parameter, in the
 * stack's workgroup (which sets the result location, its encryption and the scan cutoff).
 */
export async function exactRankingAthena(
  athena: AthenaClient,
  where: { workGroup: string; database: string },
  crawlId: string,
  opts: { pollMs?: number; timeoutMs?: number; maxRows?: number; sqlFile?: string } = {},
): Promise<Ranked[]> {
  const sql = await readFile(opts.sqlFile ?? INLINKS_SQL, 'utf8');
  const { QueryExecutionId } = await athena.send(
    new StartQueryExecutionCommand({
      QueryString: sql,
      WorkGroup: where.workGroup,
      QueryExecutionContext: { Database: where.database },
      ExecutionParameters: [sqlString(crawlId)],
    }),
  );
  const deadline = Date.now() + (opts.timeoutMs ?? 300_000);
  for (;;) {
    const { QueryExecution } = await athena.send(new GetQueryExecutionCommand({ QueryExecutionId }));
    const state = QueryExecution?.Status?.State;
    if (state === 'SUCCEEDED') break;
    if (state === 'FAILED' || state === 'CANCELLED')
      throw new Error(
        `Athena query ${QueryExecutionId} ${state}: ${QueryExecution?.Status?.StateChangeReason ?? ''}`,
      );
    if (Date.now() > deadline)
      throw new Error(`Athena query ${QueryExecutionId} still ${state} after the timeout`);
    await new Promise((r) => setTimeout(r, opts.pollMs ?? 1_000));
  }
  const ranked: Ranked[] = [];
  let token: string | undefined;
  let header = true;
  do {
    const page = await athena.send(new GetQueryResultsCommand({ QueryExecutionId, NextToken: token }));
    for (const row of page.ResultSet?.Rows ?? []) {
      // The first row of the first page holds the column names.
      if (header) {
        header = false;
        continue;
      }
      const [url, inlinks] = (row.Data ?? []).map((d) => d.VarCharValue ?? '');
      ranked.push({ url: url as string, inlinks: Number(inlinks) });
    }
    token = page.NextToken;
  } while (token && ranked.length < (opts.maxRows ?? 100_000));
  return ranked;
}

export interface RankingDiff {
  /** Links counted online beyond the exact ones, summed over URLs: what at-least-once delivery added. */
  readonly overcount: number;
  /** Links the online side lacks, summed over URLs; more than 0 means it is behind or lost something. */
  readonly missing: number;
  /** URLs whose counts differ. */
  readonly urlsDiffering: number;
  /** The largest difference on one URL. */
  readonly maxDiff: number;
  /** URLs in both top-N lists. */
  readonly topOverlap: number;
  readonly topN: number;
}

/** How far the online ranking is from the exact one. */
export function compareRankings(online: readonly Ranked[], exact: readonly Ranked[], topN = 10): RankingDiff {
  const on = new Map(online.map((r) => [r.url, r.inlinks]));
  const ex = new Map(exact.map((r) => [r.url, r.inlinks]));
  let overcount = 0;
  let missing = 0;
  let urlsDiffering = 0;
  let maxDiff = 0;
  for (const url of new Set([...on.keys(), ...ex.keys()])) {
    const diff = (on.get(url) ?? 0) - (ex.get(url) ?? 0);
    if (diff === 0) continue;
    urlsDiffering++;
    maxDiff = Math.max(maxDiff, Math.abs(diff));
    if (diff > 0) overcount += diff;
    else missing -= diff;
  }
  const topOnline = new Set(online.slice(0, topN).map((r) => r.url));
  const topOverlap = exact.slice(0, topN).filter((r) => topOnline.has(r.url)).length;
  return { overcount, missing, urlsDiffering, maxDiff, topOverlap, topN };
}

/** A ranking as numbered lines. */
export function formatRanking(ranking: readonly Ranked[], n = 10): string {
  const width = String(ranking[0]?.inlinks ?? 0).length;
  return ranking
    .slice(0, n)
    .map((r, i) => `${String(i + 1).padStart(2)}. ${String(r.inlinks).padStart(width)}  ${r.url}`)
    .join('\n');
}
