import './quiet-sdk';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import {
  CrawlRequestError,
  type CrawlRequestInput,
  parseCrawlLimits,
  parseCrawlRequest,
} from '../functions/shared/crawl-request';
import { LOCALSTACK_ENDPOINT } from '../localstack/settings';
import { crawlBudget, isIdle, listPages, pipelineStatus, submitCrawl } from './crawl-api';
import { peekDlq, type QueueName, redrive } from './operations';
import { checkOutputs, LOCALSTACK_CREDENTIALS, makeTarget, stackOutputs, type Target } from './target';

/** Where a running sandbox records itself; overridable so tests can point the CLI at their own sandbox. */
const SANDBOX_FILE =
  process.env.CRAWLER_SANDBOX_TARGET ?? path.join(import.meta.dirname, '..', '.sandbox', 'target.json');

const USAGE = `usage: npm run cli -- <command> [options]

commands:
  submit <url...> [--max-pages N] [--max-depth D] [--allow host,host]   start a crawl; prints its crawlId
  status [--crawl ID] [--watch]                                        queue depths, DLQs, pages stored, rate
  results <crawlId> [--out file.jsonl]                                  stored pages as JSON lines
  dlq <frontier|parse>                                                  DLQ messages with their failure reasons
  redrive <frontier|parse>                                              move DLQ messages back to their queue

target options:
  --target sandbox|localstack|aws   default: sandbox if \`npm start -- --keep\` is running, else aws
  --stack NAME                      default: Crawler-dev
  --region REGION                   default: AWS_REGION or us-east-1
  --endpoint URL                    LocalStack endpoint, default http://localhost:4566`;

/** A failure the CLI explains in one line: exit 1. */
class CliError extends Error {}
/** Arguments that can never work, found before anything is contacted: exit 2, as for any usage error. */
class UsageError extends CliError {}

interface SandboxFile {
  outputs: Record<string, string>;
  endpoints: { sqs: string; dynamodb: string; s3: string };
  pid: number;
}

/** The running sandbox records where it is, so the CLI can reach it from another terminal. */
export function writeSandboxTarget(file: SandboxFile): void {
  writeFileSync(SANDBOX_FILE, JSON.stringify(file, null, 2));
}

function sandboxRunning(): SandboxFile | undefined {
  if (!existsSync(SANDBOX_FILE)) return undefined;
  const file = JSON.parse(readFileSync(SANDBOX_FILE, 'utf8')) as SandboxFile;
  try {
    process.kill(file.pid, 0);
    return file;
  } catch {
    return undefined;
  }
}

async function resolveTarget(values: {
  target?: string;
  stack?: string;
  region?: string;
  endpoint?: string;
}): Promise<Target> {
  const region = String(values.region ?? process.env.AWS_REGION ?? 'us-east-1');
  const stack = String(values.stack ?? 'Crawler-dev');
  const sandbox = sandboxRunning();
  const kind = String(values.target ?? (sandbox ? 'sandbox' : 'aws'));
  if (kind === 'sandbox') {
    if (!sandbox)
      throw new CliError('no sandbox is running; start one with `npm start -- --keep` in another terminal');
    return makeTarget('sandbox', checkOutputs(sandbox.outputs, 'the sandbox'), sandbox.endpoints, {
      region: 'us-east-1',
      credentials: { accessKeyId: 'sandbox', secretAccessKey: 'sandbox' },
      supportsMessageMoveTask: false,
    });
  }
  if (kind === 'localstack') {
    const endpoint = String(values.endpoint ?? LOCALSTACK_ENDPOINT);
    const credentials = LOCALSTACK_CREDENTIALS;
    const outputs = await stackOutputs(stack, region, endpoint, credentials);
    return makeTarget(
      'localstack',
      outputs,
      { sqs: endpoint, dynamodb: endpoint, s3: endpoint },
      { region, credentials, supportsMessageMoveTask: false },
    );
  }
  if (kind === 'aws') {
    return makeTarget(
      'aws',
      await stackOutputs(stack, region),
      {},
      { region, supportsMessageMoveTask: true },
    );
  }
  throw new UsageError(`--target must be sandbox, localstack or aws, not "${kind}"`);
}

function queueArg(value: string | undefined): QueueName {
  if (value === 'frontier' || value === 'parse') return value;
  throw new UsageError(`name the queue: frontier or parse (got "${value ?? ''}")`);
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
  if (!['submit', 'status', 'results', 'dlq', 'redrive'].includes(command))
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
  if (command === 'results' && !rest[0]) throw new UsageError('results needs a crawlId (printed by submit)');
  if (command === 'dlq' || command === 'redrive') queueArg(rest[0]);
  const target = await resolveTarget(values);

  switch (command) {
    case 'submit': {
      const crawlId = await submitCrawl(target, request as CrawlRequestInput);
      console.log(crawlId);
      return;
    }
    case 'status': {
      const crawlId = typeof values.crawl === 'string' ? values.crawl : undefined;
      let last: { pages: number; at: number } | undefined;
      // --watch redraws one line in place on a terminal (a line per poll when piped), and ends with a summary
      // once the queues have stayed empty for three polls in a row.
      const tty = process.stdout.isTTY === true;
      let idlePolls = 0;
      for (;;) {
        const budget = crawlId ? await crawlBudget(target, crawlId) : undefined;
        if (crawlId && !budget)
          throw new CliError(
            `no crawl ${crawlId} in ${target.outputs.CrawlsTableName}; check the id printed by submit`,
          );
        const s = await pipelineStatus(target);
        const pages = crawlId ? (await listPages(target, crawlId)).length : undefined;
        const now = Date.now();
        const rate =
          last && pages !== undefined ? ((pages - last.pages) / ((now - last.at) / 1000)).toFixed(1) : '-';
        const line =
          `frontier ${s.frontier.visible} queued / ${s.frontier.inFlight} in flight · parse ${s.parse.visible} / ${s.parse.inFlight}` +
          ` · DLQ frontier ${s.frontierDlq}, parse ${s.parseDlq}${pages !== undefined ? ` · pages ${pages} · ${rate} pages/s` : ''}` +
          `${budget ? ` · admitted ${budget.admitted}/${budget.maxPages}` : ''}`;
        if (!values.watch) return void console.log(line);
        idlePolls = isIdle(s) ? idlePolls + 1 : 0;
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
      const pages = await listPages(target, rest[0] as string);
      const lines = pages.map((p) => JSON.stringify(p)).join('\n');
      if (typeof values.out === 'string') {
        writeFileSync(values.out, lines ? `${lines}\n` : '');
        console.error(`${pages.length} pages written to ${values.out}`);
      } else if (lines) console.log(lines);
      return;
    }
    case 'dlq': {
      const entries = await peekDlq(target, queueArg(rest[0]));
      if (entries.length === 0) return void console.log('DLQ is empty');
      for (const e of entries)
        console.log(`${e.messageId}  receives=${e.receiveCount}  ${e.reason}\n  ${e.body.slice(0, 200)}`);
      return;
    }
    case 'redrive': {
      const which = queueArg(rest[0]);
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
    const usage = error instanceof UsageError || error instanceof CrawlRequestError;
    const message =
      error instanceof CliError || error instanceof CrawlRequestError
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
