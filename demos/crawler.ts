import { createWriteStream } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { CrawlRequestError, parseCrawlLimits, parseCrawlRequest } from '../functions/crawl/crawl-request';
import { type Demo, DemoUsageError } from '../sandbox/demo';
import { whyNothingStored } from '../sandbox/report';

interface CrawlerArgs {
  readonly url?: string;
  readonly maxPages: number;
  readonly maxDepth: number;
}

const usage = `crawler demo: [url] [--max-pages N] [--max-depth D]
  With no URL, crawls the bundled demo site on loopback. With a URL, crawls that site (needs internet).`;

let site: { seeds: string[]; ports: number[]; stop(): Promise<void> } | undefined;

/** The crawler's demo: crawl the bundled demo site (or one URL), watch the queues, write the pages out. */
export const demo: Demo = {
  usage,
  parse(argv): CrawlerArgs {
    let parsed: ReturnType<typeof parseArgs>;
    try {
      parsed = parseArgs({
        args: argv,
        allowPositionals: true,
        options: { 'max-pages': { type: 'string' }, 'max-depth': { type: 'string' } },
      });
    } catch (error) {
      throw new DemoUsageError((error as Error).message);
    }
    if (parsed.positionals.length > 1)
      throw new DemoUsageError(`one URL at most, got ${parsed.positionals.length}`);
    const url = parsed.positionals[0];
    // Every argument is checked before anything starts, by the rules the CLI and submitCrawl use.
    try {
      const limits = parseCrawlLimits({
        maxPages: (parsed.values['max-pages'] as string | undefined) ?? (url ? 50 : 500),
        maxDepth: (parsed.values['max-depth'] as string | undefined) ?? (url ? 2 : 8),
      });
      if (url) parseCrawlRequest({ seeds: [url], ...limits });
      return { url, ...limits };
    } catch (error) {
      if (error instanceof CrawlRequestError) throw new DemoUsageError(error.message);
      throw error;
    }
  },

  async prepare(args) {
    if ((args as CrawlerArgs).url) return { stop: async () => {} };
    const { startDemoSite } = await import('../sandbox/demo-site');
    site = await startDemoSite();
    return {
      functionEnv: { CRAWLER_TEST_ALLOW_LOOPBACK_PORTS: site.ports.join(','), FETCH_TIMEOUT_MS: '2000' },
      stop: () => site?.stop() ?? Promise.resolve(),
    };
  },

  async run(sandbox, raw, log) {
    const args = raw as CrawlerArgs;
    const { CRAWLER_OUTPUTS, listPages, listUrls, submitCrawl } = await import('../cli/crawl-api');
    const { isIdle, stackStatus } = await import('../tooling/queues');
    const { requireOutputs } = await import('../tooling/target');
    const { formatRanking, onlineRanking, RANKING_OUTPUTS } = await import('../tooling/ranking');
    const target = {
      ...sandbox.target,
      outputs: requireOutputs(sandbox.target.outputs, CRAWLER_OUTPUTS, 'the crawler demo'),
    };
    const seeds = args.url ? [args.url] : (site?.seeds ?? []);
    const crawlId = await submitCrawl(target, { seeds, maxPages: args.maxPages, maxDepth: args.maxDepth });
    log(`▶ crawl ${crawlId}: ${seeds.length} seed(s), max ${args.maxPages} pages, depth ${args.maxDepth}`);

    const crawlStart = Date.now();
    let idleStreak = 0;
    for (;;) {
      await new Promise((r) => setTimeout(r, 1_000));
      const [status, pages, urls] = await Promise.all([
        stackStatus(target),
        listPages(target, crawlId),
        listUrls(target, crawlId),
      ]);
      const q = (name: string) => status.find((s) => s.name === name);
      const fetched = urls.filter((u) => u.outcome === 'fetched').length;
      const rate = pages.length / ((Date.now() - crawlStart) / 1000);
      const frontier = q('frontier');
      const parse = q('parse');
      process.stdout.write(
        `\r  fetched ${fetched}  stored ${pages.length}  queued ${(frontier?.visible ?? 0) + (frontier?.inFlight ?? 0)}` +
          `  parsing ${(parse?.visible ?? 0) + (parse?.inFlight ?? 0)}  DLQ ${status.reduce((n, s) => n + s.dlq, 0)}` +
          `  ${rate.toFixed(1)} pages/s   `,
      );
      idleStreak = isIdle(status) ? idleStreak + 1 : 0;
      if (idleStreak >= 2) break;
    }
    const pages = await listPages(target, crawlId);
    const urls = await listUrls(target, crawlId);
    const outcomes = new Map<string, number>();
    for (const u of urls)
      outcomes.set(String(u.outcome ?? 'pending'), (outcomes.get(String(u.outcome ?? 'pending')) ?? 0) + 1);
    const root = path.join(import.meta.dirname, '..');
    const file = path.join(root, '.sandbox', `results-${crawlId}.jsonl`);
    const out = createWriteStream(file);
    for (const p of pages) out.write(`${JSON.stringify(p)}\n`);
    await new Promise<void>((r) => out.end(r));
    const seconds = (Date.now() - crawlStart) / 1000;
    log(
      `\n${pages.length > 0 ? '✔' : '■'} done in ${seconds.toFixed(1)} s: ${pages.length} pages stored (${(pages.length / seconds).toFixed(1)} pages/s)`,
    );
    log(`  outcomes: ${[...outcomes].map(([k, v]) => `${k} ${v}`).join(', ')}`);
    log(`  pages:    ${path.relative(root, file)} (one JSON object per line)`);
    log(`  logs:     ${path.relative(root, sandbox.logFile)} (Powertools JSON, grep by crawlId ${crawlId})`);
    const ranked = await onlineRanking(
      {
        ...sandbox.target,
        outputs: requireOutputs(sandbox.target.outputs, RANKING_OUTPUTS, 'the crawler demo'),
      },
      crawlId,
    );
    if (ranked.ranking.length > 0) {
      const { summary } = ranked;
      log(
        `  online ranking, by links from crawled pages (${summary.edges} links of ${summary.pages} pages counted; at most ${summary.overcountBound} counted twice):`,
      );
      log(formatRanking(ranked.ranking, 10).replace(/^/gm, '  '));
      log(`  exact:    npm run cli -- rank ${crawlId} --exact   (with \`npm start -- --keep\` running)`);
    }
    const nothing = pages.length === 0 ? whyNothingStored(outcomes) : undefined;
    if (nothing) console.error(`✖ ${nothing}`);
    const keepHints = site
      ? [
          `demo site: ${site.seeds[0]} (and ${site.seeds.length - 1} more hosts on loopback)`,
          `npm run cli -- submit ${site.seeds[0]} --max-pages 20`,
        ]
      : [];
    keepHints.push('npm run cli -- status --crawl <crawlId> --watch');
    return { ok: !nothing, keepHints };
  },
};
