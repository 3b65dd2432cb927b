import '../tooling/quiet-sdk';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { AthenaClient } from '@aws-sdk/client-athena';
import {
  CrawlRequestError,
  type CrawlRequestInput,
  parseCrawlLimits,
  parseCrawlRequest,
} from '../functions/crawl/crawl-request';
import { LOCALSTACK_ENDPOINT, STACK_NAME, targetRegion } from '../localstack/settings';
import { formatStatus, isIdle, peekDlq, redrive, stackStatus, UnknownQueueError } from '../tooling/queues';
import {
  compareRankings,
  exactRankingAthena,
  exactRankingLocal,
  formatRanking,
  onlineRanking,
  RANKING_OUTPUTS,
  type RankingTarget,
} from '../tooling/ranking';
import { runningSandbox } from '../tooling/sandbox-file';
import { connectDeployed, makeTarget, type Target } from '../tooling/target';
import { CRAWLER_OUTPUTS, type CrawlerTarget, crawlBudget, listPages, submitCrawl } from './crawl-api';

const USAGE = `usage: npm run cli -- <command> [options]

commands:
any pipeline stack:
  status [--watch]                     every queue's depth and DLQ; --watch ends once all are idle
  dlq <queue>                          a queue's DLQ messages with their failure reasons
  redrive <queue>                      move a queue's DLQ messages back to it
  (queue names come from the stack's outputs: frontier, parse and links for the crawler)

the crawler stack:
  submit <url...> [--max-pages N] [--max-depth D] [--allow host,host]   start a crawl; prints its crawlId
  status --crawl ID [--watch]          adds the crawl's pages stored, rate and admitted budget
  results <crawlId> [--out file.jsonl] stored pages as JSON lines
  rank <crawlId> [--exact] [--top N] [--engine athena|duckdb]
                                       top pages by inbound links: online (counted as pages are parsed);
                                       --exact adds the SQL ranking over the edge log (sql/inlinks.sql) and
                                       how far the two differ. Engine: Athena on aws, DuckDB otherwise

target options:
  --target sandbox|localstack|aws   default: sandbox if \`npm start -- --keep\` is running, else aws
  --stack NAME                      default: the running sandbox's stack, else STACK_NAME or Crawler-dev
  --region REGION                   default: AWS_REGION, else AWS_DEFAULT_REGION, else us-east-1
  --endpoint URL                    LocalStack endpoint, default http://localhost:4566`;

/** A failure the CLI explains in one line: exit 1. */
class CliError extends Error {}
/** Arguments that can never work, found before anything is contacted: exit 2, as for any usage error. */
class UsageError extends CliError {}

async function resolveTarget(values: {
  target?: string;
  stack?: string;
  region?: string;
  endpoint?: string;
}): Promise<Target> {
  const sandbox = runningSandbox();
  const kind = String(values.target ?? (sandbox ? 'sandbox' : 'aws'));
  if (kind === 'sandbox') {
    if (!sandbox)
      throw new CliError('no sandbox is running; start one with `npm start -- --keep` in another terminal');
    if (values.stack && values.stack !== sandbox.stackName)
      throw new CliError(
        `the running sandbox holds ${sandbox.stackName}, not ${values.stack}; start it with \`npm start -- --stack ${values.stack} --keep\``,
      );
    return makeTarget(
      'sandbox',
      sandbox.stackName,
      sandbox.outputs,
      {
        region: sandbox.region,
        credentials: { accessKeyId: 'sandbox', secretAccessKey: 'sandbox' },
        endpoints: sandbox.endpoints,
      },
      { supportsMessageMoveTask: false },
    );
  }
  if (kind !== 'localstack' && kind !== 'aws')
    throw new UsageError(`--target must be sandbox, localstack or aws, not "${kind}"`);
  const stack = String(values.stack ?? STACK_NAME);
  const region = String(values.region ?? targetRegion());
  return connectDeployed(kind, stack, region, { endpoint: String(values.endpoint ?? LOCALSTACK_ENDPOINT) });
}

/** The crawler's commands need the crawler's outputs: say which stack lacks them, as a one-line error. */
function crawlerTarget(target: Target, command: string): CrawlerTarget {
  const missing = CRAWLER_OUTPUTS.filter((n) => !target.outputs[n]);
  if (missing.length > 0)
    throw new CliError(
      `${command} is a crawler command, and stack ${target.stackName} is not a crawler stack (it lacks ${missing.join(', ')})`,
    );
  return target as CrawlerTarget;
}

/** The ranking's commands need the ranks table and the edge log. */
function rankingTarget(target: Target): RankingTarget {
  const missing = RANKING_OUTPUTS.filter((n) => !target.outputs[n]);
  if (missing.length > 0)
    throw new CliError(
      `rank needs a crawler stack with the ranking, and stack ${target.stackName} lacks ${missing.join(', ')} (deploy the current version)`,
    );
  return target as RankingTarget;
}

function athenaTables(target: Target): { workGroup: string; database: string } {
  const { RankingWorkGroup: workGroup, RankingDatabase: database } = target.outputs;
  if (!workGroup || !database)
    throw new CliError(
      `stack ${target.stackName} (${target.name}) has no Athena workgroup; use --engine duckdb, or deploy the current version to AWS`,
    );
  return { workGroup, database };
}

function athenaClient(values: { region?: string; target?: string; endpoint?: string }): AthenaClient {
  return new AthenaClient({
    region: String(values.region ?? targetRegion()),
    ...(values.target === 'localstack' ? { endpoint: String(values.endpoint ?? LOCALSTACK_ENDPOINT) } : {}),
  });
}

const OPTIONS = {
  target: { type: 'string' },
  stack: { type: 'string' },
  region: { type: 'string' },
  endpoint: { type: 'string' },
  'max-pages': { type: 'string' },
  'max-depth': { type: 'string' },
  allow: { type: 'string' },
  crawl: { type: 'string' },
  out: { type: 'string' },
  watch: { type: 'boolean' },
  exact: { type: 'boolean' },
  top: { type: 'string' },
  engine: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

function parse(argv: string[]) {
  try {
    return parseArgs({ args: argv, allowPositionals: true, options: OPTIONS });
  } catch (error) {
    throw new UsageError(`${(error as Error).message}\n${USAGE}`);
  }
}

async function run(argv: string[]): Promise<void> {
  const parsed = parse(argv);
  const { values, positionals } = parsed;
  const [command, ...rest] = positionals;
  if (values.help || !command) return void console.log(USAGE);
  if (!['submit', 'status', 'results', 'dlq', 'redrive', 'rank'].includes(command))
    throw new UsageError(`unknown command "${command}"\n${USAGE}`);
  // Arguments are checked before the target is looked up, so a typo fails fast whatever the target.
  if (command === 'submit' && rest.length === 0) throw new UsageError('submit needs at least one seed URL');
  const limits = parseCrawlLimits({
    maxPages: values['max-pages'] ?? 100,
    maxDepth: values['max-depth'] ?? 3,
  });
  const request =
    command === 'submit'
      ? parseCrawlRequest({
          ...limits,
          seeds: rest,
          allowedHosts: typeof values.allow === 'string' ? values.allow.split(',') : undefined,
        })
      : undefined;
  if ((command === 'results' || command === 'rank') && !rest[0])
    throw new UsageError(`${command} needs a crawlId (printed by submit)`);
  const top = Number(values.top ?? 10);
  if (!Number.isInteger(top) || top < 1 || top > 1000)
    throw new UsageError(`--top must be a whole number from 1 to 1000, not "${values.top}"`);
  if (values.engine !== undefined && values.engine !== 'athena' && values.engine !== 'duckdb')
    throw new UsageError(`--engine must be athena or duckdb, not "${values.engine}"`);
  if ((command === 'dlq' || command === 'redrive') && !rest[0])
    throw new UsageError(`${command} needs a queue name (\`npm run cli -- status\` lists them)`);
  const target = await resolveTarget(values);

  switch (command) {
    case 'submit': {
      const crawlId = await submitCrawl(crawlerTarget(target, 'submit'), request as CrawlRequestInput);
      console.log(crawlId);
      return;
    }
    case 'status': {
      const crawlId = typeof values.crawl === 'string' ? values.crawl : undefined;
      const crawler = crawlId ? crawlerTarget(target, 'status --crawl') : undefined;
      let last: { pages: number; at: number } | undefined;
      // --watch redraws one line in place on a terminal (a line per poll when piped), and ends with a summary
      // once every queue has stayed empty for three polls in a row.
      const tty = process.stdout.isTTY === true;
      let idlePolls = 0;
      for (;;) {
        const budget = crawler && crawlId ? await crawlBudget(crawler, crawlId) : undefined;
        if (crawler && !budget)
          throw new CliError(
            `no crawl ${crawlId} in ${crawler.outputs.CrawlsTableName}; check the id printed by submit`,
          );
        const status = await stackStatus(target);
        const pages = crawler && crawlId ? (await listPages(crawler, crawlId)).length : undefined;
        const now = Date.now();
        const rate =
          last && pages !== undefined ? ((pages - last.pages) / ((now - last.at) / 1000)).toFixed(1) : '-';
        const line =
          `${formatStatus(status)}${pages !== undefined ? ` · pages ${pages} · ${rate} pages/s` : ''}` +
          `${budget ? ` · admitted ${budget.admitted}/${budget.maxPages}` : ''}`;
        if (!values.watch) return void console.log(line);
        idlePolls = isIdle(status) ? idlePolls + 1 : 0;
        if (idlePolls >= 3) {
          if (tty) process.stdout.write('\r\x1b[2K');
          console.log(
            `${line}\n✔ idle: nothing queued or in flight${pages !== undefined ? `; ${pages} pages stored` : ''}`,
          );
          return;
        }
        if (tty) process.stdout.write(`\r\x1b[2K${line}`);
        else console.log(line);
        if (pages !== undefined) last = { pages, at: now };
        await new Promise((r) => setTimeout(r, 2_000));
      }
    }
    case 'results': {
      const pages = await listPages(crawlerTarget(target, 'results'), rest[0] as string);
      const lines = pages.map((p) => JSON.stringify(p)).join('\n');
      if (typeof values.out === 'string') {
        writeFileSync(values.out, lines ? `${lines}\n` : '');
        console.error(`${pages.length} pages written to ${values.out}`);
      } else if (lines) console.log(lines);
      return;
    }
    case 'rank': {
      const crawlId = rest[0] as string;
      const ranking = rankingTarget(target);
      const online = await onlineRanking(ranking, crawlId);
      const { summary } = online;
      console.log(
        `online: ${online.ranking.length} URLs, ${summary.edges} links of ${summary.pages} pages counted, at most ${summary.overcountBound} counted twice (${summary.repeats} pages repeated)`,
      );
      console.log(online.ranking.length > 0 ? formatRanking(online.ranking, top) : '  (nothing counted yet)');
      if (!values.exact) return;
      const engine = values.engine ?? (target.name === 'aws' ? 'athena' : 'duckdb');
      const started = Date.now();
      const exact =
        engine === 'athena'
          ? await exactRankingAthena(athenaClient(values), athenaTables(target), crawlId)
          : await exactRankingLocal(ranking, crawlId);
      console.log(
        `\nexact (${engine}, sql/inlinks.sql, ${((Date.now() - started) / 1000).toFixed(1)} s): ${exact.length} URLs`,
      );
      console.log(exact.length > 0 ? formatRanking(exact, top) : '  (no edge log for this crawl)');
      const d = compareRankings(online.ranking, exact, top);
      console.log(
        `\nonline vs exact: ${d.urlsDiffering} URLs differ (largest difference ${d.maxDiff}); ${d.overcount} links counted twice (bound ${summary.overcountBound}), ${d.missing} not counted yet; top ${d.topN}: ${d.topOverlap} in common`,
      );
      return;
    }
    case 'dlq': {
      const entries = await peekDlq(target, rest[0] as string);
      if (entries.length === 0) return void console.log('DLQ is empty');
      for (const e of entries) {
        const attributes = Object.entries(e.attributes).map(([name, bytes]) => `${name} (${bytes} bytes)`);
        console.log(
          `${e.messageId}  receives=${e.receiveCount}  ${e.reason}\n  ${e.body.slice(0, 200)}` +
            (attributes.length > 0 ? `\n  attributes: ${attributes.join(', ')}` : ''),
        );
      }
      return;
    }
    case 'redrive': {
      const which = rest[0] as string;
      const result = await redrive(target, which, (moved) => process.stderr.write(`\r  moved ${moved}…`));
      console.log(
        result.method === 'message-move-task'
          ? `started a message move task from the ${which} DLQ (watch it in the SQS console)`
          : `\rmoved ${result.moved} ${result.moved === 1 ? 'message' : 'messages'} from the ${which} DLQ back to its queue`,
      );
      return;
    }
  }
}

const isMain = process.argv[1] && path.resolve(process.argv[1]) === path.resolve(import.meta.filename);
if (isMain) {
  run(process.argv.slice(2)).catch((error: unknown) => {
    const e = error as Error & { name?: string; code?: string };
    // An unknown queue name is an argument that can never work: a usage error, like the rest.
    const usage =
      error instanceof UsageError || error instanceof CrawlRequestError || error instanceof UnknownQueueError;
    const message =
      error instanceof CliError || error instanceof CrawlRequestError || error instanceof UnknownQueueError
        ? e.message
        : e.name === 'CredentialsProviderError'
          ? 'no AWS credentials found; configure a profile or pass --target sandbox|localstack'
          : e.code === 'ECONNREFUSED'
            ? `cannot reach the endpoint (${e.message}); is it running?`
            : `${e.name ?? 'Error'}: ${e.message}`;
    console.error(`✖ ${message}`);
    process.exit(usage ? 2 : 1);
  });
}

export { run as runCli };
