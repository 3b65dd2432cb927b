import '../cli/quiet-sdk';
import { createWriteStream, rmSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { CrawlRequestError, parseCrawlLimits, parseCrawlRequest } from '../functions/shared/crawl-request';
import { whyNothingStored } from './report';
import type { Sandbox } from './sandbox';

const USAGE = `usage: npm start -- [url] [--max-pages N] [--max-depth D] [--keep]

With no URL, crawls the bundled demo site on loopback. With a URL, crawls that site (needs internet).
--keep leaves the sandbox running after the crawl, for \`npm run cli -- …\` in another terminal.`;

/** Arguments that can never work: one line, exit 2, before anything has started. */
function usageError(message: string): never {
  console.error(`✖ ${message}`);
  process.exit(2);
}

async function main(): Promise<void> {
  let args: ReturnType<typeof parseArgs>;
  try {
    args = parseArgs({
      allowPositionals: true,
      options: {
        'max-pages': { type: 'string' },
        'max-depth': { type: 'string' },
        keep: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (error) {
    usageError(`${(error as Error).message}\n${USAGE}`);
  }
  if (args.values.help) return void console.log(USAGE);
  if (args.positionals.length > 1) usageError(`one URL at most, got ${args.positionals.length}\n${USAGE}`);
  const url = args.positionals[0];
  // Every argument is checked before anything starts, by the rules the CLI and submitCrawl use.
  let maxPages: number;
  let maxDepth: number;
  try {
    ({ maxPages, maxDepth } = parseCrawlLimits({
      maxPages: (args.values['max-pages'] as string | undefined) ?? (url ? 50 : 500),
      maxDepth: (args.values['max-depth'] as string | undefined) ?? (url ? 2 : 8),
    }));
    if (url) parseCrawlRequest({ seeds: [url], maxPages, maxDepth });
  } catch (error) {
    if (error instanceof CrawlRequestError) usageError(error.message);
    throw error;
  }
  // The rest (AWS SDK, CDK tooling) loads only once the arguments are known to be good: a typo answers at once.
  const [
    { isIdle, listPages, listUrls, pipelineStatus, submitCrawl },
    { writeSandboxTarget },
    { startDemoSite },
  ] = await Promise.all([import('../cli/crawl-api'), import('../cli/main'), import('./demo-site')]);
  const { checkJava } = await import('./emulators');
  const { PROJECT_ROOT, startSandbox } = await import('./sandbox');
  // The one thing the machine may lack: say so before the synth, not after it.
  checkJava();

  const started = Date.now();
  console.log('▶ starting the sandbox: Java found; synthesizing the stack, then the emulators…');
  const demo = url ? undefined : await startDemoSite();
  let sandbox: Sandbox | undefined;
  let stopping = false;
  const shutdown = async (code: number) => {
    if (stopping) return;
    stopping = true;
    rmSync(path.join(PROJECT_ROOT, '.sandbox', 'target.json'), { force: true });
    await sandbox?.stop();
    await demo?.stop();
    process.exit(code);
  };
  process.on('SIGINT', () => {
    console.log('\n■ stopping…');
    void shutdown(130);
  });
  process.on('SIGTERM', () => void shutdown(143));

  sandbox = await startSandbox({
    synth: 'always',
    onStep: (step, ms) => console.log(`  ✓ ${step} (${(ms / 1000).toFixed(1)} s)`),
    retryDelaySeconds: 1,
    functionEnv: {
      POWERTOOLS_LOG_LEVEL: 'INFO',
      ...(demo ? { CRAWLER_TEST_ALLOW_LOOPBACK_PORTS: demo.ports.join(','), FETCH_TIMEOUT_MS: '2000' } : {}),
    },
  });
  const skipped = Object.entries(sandbox.provisioned.notProvisioned).map(([t, n]) => `${t}×${n}`);
  console.log(
    `  ready in ${((Date.now() - started) / 1000).toFixed(1)} s. Not emulated locally: ${skipped.join(', ')}`,
  );
  console.log(`  function logs: ${path.relative(PROJECT_ROOT, sandbox.logFile)}`);
  writeSandboxTarget({
    outputs: sandbox.provisioned.outputs,
    endpoints: {
      sqs: sandbox.emulators.sqsEndpoint,
      dynamodb: sandbox.emulators.dynamodbEndpoint,
      s3: sandbox.emulators.s3Endpoint,
    },
    pid: process.pid,
  });

  const seeds = url ? [url] : (demo?.seeds ?? []);
  const crawlId = await submitCrawl(sandbox.target, { seeds, maxPages, maxDepth });
  console.log(`▶ crawl ${crawlId}: ${seeds.length} seed(s), max ${maxPages} pages, depth ${maxDepth}`);

  const crawlStart = Date.now();
  let idleStreak = 0;
  for (;;) {
    await new Promise((r) => setTimeout(r, 1_000));
    if (stopping) return;
    const [status, pages, urls] = await Promise.all([
      pipelineStatus(sandbox.target),
      listPages(sandbox.target, crawlId),
      listUrls(sandbox.target, crawlId),
    ]);
    const fetched = urls.filter((u) => u.outcome === 'fetched').length;
    const rate = pages.length / ((Date.now() - crawlStart) / 1000);
    process.stdout.write(
      `\r  fetched ${fetched}  stored ${pages.length}  queued ${status.frontier.visible + status.frontier.inFlight}` +
        `  parsing ${status.parse.visible + status.parse.inFlight}  DLQ ${status.frontierDlq + status.parseDlq}` +
        `  ${rate.toFixed(1)} pages/s   `,
    );
    idleStreak = isIdle(status) ? idleStreak + 1 : 0;
    if (idleStreak >= 2) break;
  }
  const pages = await listPages(sandbox.target, crawlId);
  const urls = await listUrls(sandbox.target, crawlId);
  const outcomes = new Map<string, number>();
  for (const u of urls)
    outcomes.set(String(u.outcome ?? 'pending'), (outcomes.get(String(u.outcome ?? 'pending')) ?? 0) + 1);
  const file = path.join(PROJECT_ROOT, '.sandbox', `results-${crawlId}.jsonl`);
  const out = createWriteStream(file);
  for (const p of pages) out.write(`${JSON.stringify(p)}\n`);
  await new Promise<void>((r) => out.end(r));
  const seconds = (Date.now() - crawlStart) / 1000;
  console.log(
    `\n${pages.length > 0 ? '✔' : '■'} done in ${seconds.toFixed(1)} s: ${pages.length} pages stored (${(pages.length / seconds).toFixed(1)} pages/s)`,
  );
  console.log(`  outcomes: ${[...outcomes].map(([k, v]) => `${k} ${v}`).join(', ')}`);
  console.log(`  pages:    ${path.relative(PROJECT_ROOT, file)} (one JSON object per line)`);
  console.log(
    `  logs:     ${path.relative(PROJECT_ROOT, sandbox.logFile)} (Powertools JSON, grep by crawlId ${crawlId})`,
  );
  const nothing = pages.length === 0 ? whyNothingStored(outcomes) : undefined;
  if (nothing) console.error(`✖ ${nothing}`);
  if (args.values.keep) {
    console.log('  sandbox still running (--keep); Ctrl-C to stop. In another terminal:');
    if (demo) {
      console.log(`    demo site: ${demo.seeds[0]} (and ${demo.seeds.length - 1} more hosts on loopback)`);
      console.log(`    npm run cli -- submit ${demo.seeds[0]} --max-pages 20`);
    }
    console.log('    npm run cli -- status --crawl <crawlId> --watch');
    return;
  }
  await shutdown(nothing ? 1 : 0);
}

main().catch(async (error) => {
  const { SandboxSetupError } = await import('./emulators');
  console.error(error instanceof SandboxSetupError ? `✖ ${error.message}` : error);
  process.exit(1);
});
