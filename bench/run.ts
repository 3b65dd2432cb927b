import '../tooling/quiet-sdk';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import zlib from 'node:zlib';
import type { S3Client } from '@aws-sdk/client-s3';
import { build } from 'esbuild';
import { CRAWLER_OUTPUTS, listPages, listUrls, submitCrawl } from '../cli/crawl-api';
import { ENV } from '../functions/crawl/env-names';
import { frontierGroupId } from '../functions/crawl/url';
import { transientRetries } from '../functions/crawler/failures';
import { robotsDecision } from '../functions/crawler/robots';
import { itemBytes } from '../functions/parser/store';
import { type DemoSiteOptions, startDemoSite } from '../sandbox/demo-site';
import { type Counts, mergeCounts } from '../sandbox/meter.mjs';
import { functionName, type InvocationStats, peakMemory } from '../sandbox/runner';
import { CDK_OUT, PROJECT_ROOT, type SandboxOptions, startSandbox, synthesize } from '../sandbox/sandbox';
import { processCpuMs as cpuOfProcess } from '../sandbox/usage.mjs';
import { nodeOfRuntime } from '../tooling/lambda-node.mjs';
import { waitFor, waitForIdle } from '../tooling/queues';
import { listEdgeLog } from '../tooling/ranking';

/**
 * `npm run bench`: measures what the budgets in issue #6 are about and exits non-zero when one is missed.
 * Writes bench/results/bench.json and bench/results/summary.md. Not part of `npm test`.
 */
const RESULTS = path.join(PROJECT_ROOT, 'bench', 'results');
const prices = JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'bench', 'prices.json'), 'utf8')) as Record<
  string,
  number
>;
const { values: flags } = parseArgs({
  options: {
    quick: { type: 'boolean' },
    'skip-npm-test': { type: 'boolean' },
    // Comma-separated subset of: packages, crawl, onehost, chain, batch, largest, crawlee, devloop. Budgets of the parts left
    // out are not checked, and the results go to bench/results/partial/ instead of the committed files.
    only: { type: 'string' },
  },
});

interface Figure {
  name: string;
  value: number | string;
  unit: string;
  budget?: string;
  ok?: boolean;
  reproduce: string;
  note?: string;
}
const figures: Figure[] = [];
function report(f: Figure): void {
  figures.push(f);
  const verdict = f.ok === undefined ? '' : f.ok ? '  ✔ within budget' : '  ✖ BUDGET MISSED';
  console.log(
    `${f.name}: ${f.value} ${f.unit}${f.budget ? ` (budget ${f.budget})` : ''}${verdict}\n    reproduce: ${f.reproduce}`,
  );
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;

// 1. Lambda package and init -------------------------------------------------------------------------------

/** The synthesized dev template's resources, which every part reads its settings from. */
function templateResources(): Record<
  string,
  { Type: string; Properties: Record<string, unknown>; Metadata?: Record<string, string> }
> {
  return JSON.parse(readFileSync(path.join(CDK_OUT, 'Crawler-dev.template.json'), 'utf8')).Resources;
}

/**
 * The pipeline's own functions: those an event source mapping invokes. CDK's helper functions (the dev
 * bucket's auto-delete provider) are deploy-time plumbing with a CommonJS bundle of their own.
 */
function functionAssets(): Array<{ id: string; dir: string; memoryMb: number }> {
  const resources = templateResources();
  const consumers = new Set(
    Object.values(resources)
      .filter((r) => r.Type === 'AWS::Lambda::EventSourceMapping')
      .map((r) => (r.Properties.FunctionName as { Ref?: string } | undefined)?.Ref),
  );
  return Object.entries(resources)
    .filter(([id, r]) => r.Type === 'AWS::Lambda::Function' && consumers.has(id))
    .map(([id, r]) => ({
      id,
      dir: path.join(CDK_OUT, r.Metadata?.['aws:asset:path'] ?? ''),
      memoryMb: Number(r.Properties.MemorySize ?? 128),
    }));
}

function importMs(file: string, env: Record<string, string>): number {
  const runs: number[] = [];
  for (let i = 0; i < 7; i++) {
    const out = spawnSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `const t=performance.now();await import(${JSON.stringify(file)});console.log(performance.now()-t)`,
      ],
      { cwd: PROJECT_ROOT, env: { ...process.env, ...env }, encoding: 'utf8' },
    );
    if (out.status !== 0) throw new Error(`importing ${file} failed: ${out.stderr.slice(-500)}`);
    runs.push(Number(out.stdout.trim().split('\n').pop()));
  }
  return median(runs);
}

async function benchPackages(): Promise<void> {
  // Two baselines: a bare hello-world, and a hello-world that creates the same AWS SDK clients ours do.
  // Lambda ships the SDK in the runtime and our bundles keep it external, so the second one isolates
  // what this project's own code and libraries add to init; the budget applies to it.
  const hello = path.join(PROJECT_ROOT, '.sandbox', 'bench-hello');
  mkdirSync(hello, { recursive: true });
  writeFileSync(
    path.join(hello, 'bare.ts'),
    'export const handler = async () => ({ batchItemFailures: [] });\n',
  );
  writeFileSync(
    path.join(hello, 'sdk.ts'),
    [
      "import { DynamoDBClient } from '@aws-sdk/client-dynamodb';",
      "import { S3Client } from '@aws-sdk/client-s3';",
      "import { SQSClient } from '@aws-sdk/client-sqs';",
      "import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';",
      'const clients = [new SQSClient({}), DynamoDBDocumentClient.from(new DynamoDBClient({})), new S3Client({})];',
      'export const handler = async () => ({ batchItemFailures: [], clients: clients.length });',
      '',
    ].join('\n'),
  );
  for (const name of ['bare', 'sdk']) {
    await build({
      entryPoints: [path.join(hello, `${name}.ts`)],
      outfile: path.join(hello, `${name}.mjs`),
      bundle: true,
      minify: true,
      format: 'esm',
      platform: 'node',
      target: 'node20',
      external: ['@aws-sdk/*'],
    });
  }
  const bareMs = importMs(path.join(hello, 'bare.mjs'), {});
  const helloMs = importMs(path.join(hello, 'sdk.mjs'), {});
  // Enough environment for the handlers' load-time checks; nothing is called.
  const env = Object.fromEntries(
    [
      'FRONTIER_QUEUE_URL',
      'PARSE_QUEUE_URL',
      'DLQ_URL',
      'URLS_TABLE',
      'CRAWLS_TABLE',
      'BODIES_BUCKET',
      'LINKS_QUEUE_URL',
      'RANKS_TABLE',
      'EDGES_BUCKET',
      'CRAWLER_USER_AGENT',
    ].map((k) => [k, 'x']),
  );
  for (const fn of functionAssets()) {
    const file = path.join(fn.dir, 'index.mjs');
    const bytes = statSync(file).size;
    const meta = JSON.parse(readFileSync(path.join(fn.dir, 'index.meta.json'), 'utf8')) as {
      outputs: Record<string, { entryPoint?: string; inputs: Record<string, { bytesInOutput: number }> }>;
    };
    const out = Object.values(meta.outputs).find((o) => o.entryPoint);
    const byPackage = new Map<string, number>();
    for (const [input, info] of Object.entries(out?.inputs ?? {})) {
      const pkg = /node_modules\/((@[^/]+\/)?[^/]+)/.exec(input)?.[1] ?? '(project code)';
      byPackage.set(pkg, (byPackage.get(pkg) ?? 0) + info.bytesInOutput);
    }
    const top = [...byPackage].sort((a, b) => b[1] - a[1]).slice(0, 5);
    const name = fn.id.replace(/Function.*/, '').toLowerCase();
    report({
      name: `${name} bundle`,
      value: bytes,
      unit: 'bytes (minified ESM, AWS SDK external)',
      budget: '≤ 300 KB',
      ok: bytes <= 300 * 1024,
      reproduce: 'npm run synth && ls -l cdk.out/asset.*/index.mjs',
      note: `largest parts: ${top.map(([p, b]) => `${p} ${Math.round(b / 1024)} KB`).join(', ')}`,
    });
    console.log(`    inside: ${figures.at(-1)?.note}`);
    const ms = importMs(file, env);
    report({
      name: `${name} import time ratio`,
      value: round(ms / helloMs),
      unit: `× a hello-world with the same AWS SDK clients (${round(ms, 1)} ms vs ${round(helloMs, 1)} ms; bare hello-world ${round(bareMs, 1)} ms; median of 7 fresh processes)`,
      budget: '≤ 2',
      ok: ms / helloMs <= 2,
      reproduce: 'npm run bench',
    });
  }
}

// 2. Requests and cost, 3. throughput ----------------------------------------------------------------------

function serviceOf(key: string): string {
  return key.split('.')[0] ?? key;
}

/** The metered crawl's site and throughput, which the Crawlee comparison repeats on the same site. */
const CRAWL_SITE = {
  hostCount: 16,
  pagesPerHost: flags.quick ? 25 : 140,
  extraLinksPerPage: 50,
  // The median page: about 18 KB compressed (HTTP Archive Web Almanac), so SQS's 64 KiB chunks, the parser's
  // CPU and the claim-check threshold are measured at a realistic size, not at the demo's 3 KB.
  pageTextBytes: 65_000,
};
let pipelineThroughput: { pagesPerSecond: number; pages: number } | undefined;
/** Message groups (hosts) per crawler batch in the metered crawl: a group's URLs are fetched a few at a time. */
let groupsPerCrawlerBatch: number | undefined;
/** Fetches per host side by side in the metered crawl, by message group: see fetchLanes. */
let crawlLanes: Readonly<Record<string, number>> | undefined;

/** The metered crawl's fetches per host, in words: "up to 4 (1 for the 1 host with a Crawl-delay)". */
function describeLanes(): string {
  if (!crawlLanes) return 'one or more';
  const counts = Object.values(crawlLanes);
  const most = Math.max(...counts);
  const single = counts.filter((n) => n === 1).length;
  return most <= 1
    ? 'one'
    : `up to ${most}${single ? ` (1 for the ${single} host${single === 1 ? '' : 's'} with a Crawl-delay)` : ''}`;
}
/**
 * The functions' CPU per page in the metered crawl: their environments' whole CPU (JS thread, GC, thread
 * pool), each environment a child process as on Lambda; and their JS threads' alone.
 */
let pipelineCpuMsPerPage: number | undefined;
/** Each metered crawl's pages per second and functions' CPU per page, in the order they ran. */
let pipelineRuns: Array<{ pagesPerSecond: number; cpuMsPerPage: number; jsCpuMsPerPage: number }> = [];
/**
 * Metered crawls of the crawl part. With the crawlee part, each is followed at once by a Crawlee run on a
 * new site, and the ratios are the medians of the five pairs' ratios: the machine's speed moved the
 * figures of both by a third between full runs, and a pair shares the machine's state of its minute.
 */
const CRAWL_RUNS = flags.quick ? 1 : 5;
/** The Crawlee runs paired with the metered crawls, in the same order (empty without the crawlee part). */
const pairedCrawleeRuns: CrawleeRun[] = [];
let pipelineJsCpuMsPerPage: number | undefined;
/** The same by function, as text for the report. */
let pipelineCpuSplit = '';

/**
 * An invocation's CPU: its environment's whole CPU where measured (isolation 'process'), else its JS
 * thread's CPU time (Linux), else its busy time (event-loop utilisation), which also counts the time a busy
 * thread waits for a core on a loaded machine.
 */
const cpuOf = (i: InvocationStats): number => i.environmentCpuMs ?? i.cpuMs ?? i.activeMs ?? 0;
const jsCpuOf = (i: InvocationStats): number => i.cpuMs ?? i.activeMs ?? 0;
let requestsByOperation: Record<string, { requests: number; units: number; perPage: number }> | undefined;
let requestsByFunction:
  | Record<string, Record<string, { requests: number; unitsPerPage: number }>>
  | undefined;

interface CrawlRun {
  readonly pages: number;
  readonly links: number;
  /** Submit to every queue idle (the ranker's batching window and the idle check included). */
  readonly seconds: number;
  /**
   * Submit to the crawl's last effect: the latest page stored or URL outcome recorded. Crawlee's time ends
   * at its last page too; the ranker's batching window and the idle check come after it.
   */
  readonly crawlSeconds: number;
  /** Seconds from submit by which half, nine tenths and all of the pages were stored. */
  readonly storedBy: { half: number; most: number; all: number };
  /** Seconds from submit to each host's last stored page, earliest first. */
  readonly hostDone: number[];
  /** TCP connections the site accepted per request it served: 1 without keep-alive. */
  readonly connectionsPerRequest: number;
  readonly meter: Counts;
  /** The same requests again, by function logical id: each function's own and its pollers'. */
  readonly meterByFunction: Record<string, Counts>;
  readonly invocations: InvocationStats[];
  /** Compressed bytes of the crawl's edge log in S3: what one exact ranking query scans. */
  readonly edgeLogBytes: number;
  /** Log bytes and lines by Powertools service name. */
  readonly logsByService: Record<string, { bytes: number; lines: number }>;
  /** The functions' own log output at the prod log level, bytes and lines (CloudWatch Logs ingestion). */
  readonly logBytes: number;
  readonly logLines: number;
  /** Distinct custom metrics the functions emitted (namespace, name, dimensions): each bills per month. */
  readonly customMetrics: number;
  /** DynamoDB storage the crawl left: stored item bytes (+100 B each, as DynamoDB counts) of pages and URLs. */
  readonly storedBytes: number;
  /** This process's CPU during the crawl, all threads (fauxqs, the bench). */
  readonly processCpuMs: number;
  /** The demo site's CPU during the crawl (its own process), where Linux reports it. */
  readonly siteCpuMs?: number;
  /** How idle the machine was in the second before the crawl started (0 to 1). */
  readonly idleBefore?: number;
  /** DynamoDB Local's CPU during the crawl (a Java child process), where Linux reports it. */
  readonly dynamodbCpuMs?: number;
  /** How many of each host's fetches (by message group id) the crawler runs side by side: see fetchLanes. */
  readonly lanesByGroup: Readonly<Record<string, number>>;
}

/**
 * How many fetches of each host the crawler runs side by side, decided as the crawler decides it: one for a
 * host whose robots.txt sets a Crawl-delay, the function's MAX_FETCHES_PER_HOST for one that sets none. Read
 * from the site's own robots.txt files and the crawler's environment (`crawlerEnv`), not assumed.
 */
async function fetchLanes(
  hosts: readonly string[],
  crawlerEnv: Readonly<Record<string, string>>,
): Promise<Record<string, number>> {
  const perHost = Number(crawlerEnv[ENV.maxFetchesPerHost] ?? 1);
  const userAgent = crawlerEnv[ENV.userAgent] ?? '*';
  const lanes: Record<string, number> = {};
  for (const host of hosts) {
    const robotsUrl = `http://${host}/robots.txt`;
    const res = await fetch(robotsUrl);
    const rules = robotsDecision(robotsUrl, userAgent, { status: res.status, body: await res.text() });
    lanes[frontierGroupId(`http://${host}/`)] = rules.crawlDelayMs > 0 ? 1 : perHost;
  }
  return lanes;
}

/** The prod stage's log level: what the function logs cost is measured at. */
const PROD_LOG_LEVEL = 'INFO';

/** Total size of a crawl's edge log objects. */
async function edgeLogBytes(
  target: { s3: S3Client; outputs: Record<string, string | undefined> },
  crawlId: string,
) {
  const objects = await listEdgeLog(target.s3, target.outputs.EdgesBucketName as string, crawlId);
  return objects.reduce((n, o) => n + o.size, 0);
}

/**
 * The Node the functions run on in the bench: the major of their Lambda runtime (nodejs24.x → 24), from the
 * registry's binary package when this machine's Node is another; this Node where that cannot run.
 */
let functionNodeCache: { path: string; version: string; note: string } | undefined;
function functionNode(): { path: string; version: string; note: string } {
  if (functionNodeCache) return functionNodeCache;
  const runtime = Object.values(templateResources()).find((r) => r.Type === 'AWS::Lambda::Function')
    ?.Properties?.Runtime;
  const found = nodeOfRuntime(typeof runtime === 'string' ? runtime : undefined, {
    log: (line) => console.log(`    ${line}`),
  });
  const nodePath = found.path ?? process.execPath;
  const version = spawnSync(nodePath, ['--version'], { encoding: 'utf8' }).stdout.trim();
  functionNodeCache = {
    path: nodePath,
    version,
    note: found.path ? `Node ${version}, the functions' runtime major` : `Node ${version}: ${found.why}`,
  };
  return functionNodeCache;
}

/** When the pages of a crawl were stored, from its submit: overall, and each host's last. */
function crawlTimeline(pages: ReadonlyArray<Record<string, unknown>>, started: number) {
  const at = (p: Record<string, unknown>) => (Date.parse(String(p.storedAt)) - started) / 1000;
  const times = pages.map(at).sort((a, b) => a - b);
  const quantile = (q: number) => times[Math.min(times.length - 1, Math.ceil(q * times.length) - 1)] ?? 0;
  const hostDone = new Map<string, number>();
  for (const p of pages) {
    const host = new URL(String(p.url)).host;
    hostDone.set(host, Math.max(hostDone.get(host) ?? 0, at(p)));
  }
  return {
    storedBy: { half: quantile(0.5), most: quantile(0.9), all: quantile(1) },
    hostDone: [...hostDone.values()].sort((a, b) => a - b),
  };
}

/** The demo site in a child process (bench/demo-site-process.ts), with its request and connection counts. */
interface SiteProcess {
  readonly hosts: string[];
  readonly seeds: string[];
  readonly ports: number[];
  readonly pid: number | undefined;
  stats(): Promise<{ requests: number; connections: number }>;
  stop(): Promise<void>;
}

async function startSiteProcess(options: DemoSiteOptions): Promise<SiteProcess> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', path.join(PROJECT_ROOT, 'bench', 'demo-site-process.ts'), JSON.stringify(options)],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const lines: string[] = [];
  const waiting: Array<{ resolve: (line: string) => void; reject: (error: Error) => void }> = [];
  let exited: Error | undefined;
  let buffered = '';
  child.stdout.on('data', (d) => {
    buffered += d;
    for (let i = buffered.indexOf('\n'); i >= 0; i = buffered.indexOf('\n')) {
      const line = buffered.slice(0, i);
      buffered = buffered.slice(i + 1);
      const next = waiting.shift();
      if (next) next.resolve(line);
      else lines.push(line);
    }
  });
  child.once('exit', (code) => {
    exited = new Error(`demo site process exited with ${code}`);
    for (const w of waiting.splice(0)) w.reject(exited);
  });
  const nextLine = () =>
    new Promise<string>((resolve, reject) => {
      const line = lines.shift();
      if (line !== undefined) resolve(line);
      else if (exited) reject(exited);
      else waiting.push({ resolve, reject });
    });
  const first = JSON.parse(await nextLine()) as { hosts: string[]; seeds: string[]; ports: number[] };
  return {
    ...first,
    pid: child.pid,
    async stats() {
      child.stdin.write('stats\n');
      return JSON.parse(await nextLine()) as { requests: number; connections: number };
    },
    async stop() {
      const exited = new Promise((r) => child.once('exit', r));
      child.stdin.end();
      await exited;
    },
  };
}

/** Crawl a generated site in a metered sandbox: every AWS request counted with its billed units. */
async function meteredCrawl(site: DemoSiteOptions, seedHosts: number, maxDepth: number): Promise<CrawlRun> {
  // In a process of its own, as for Crawlee: the site's event loop is not fauxqs's, and its CPU is not
  // counted as the pipeline's.
  const demo = await startSiteProcess(site);
  const meter: Counts = {};
  const meterByFunction: Record<string, Counts> = {};
  const invocations: InvocationStats[] = [];
  const sandbox = await startSandbox({
    outputs: CRAWLER_OUTPUTS,
    retryDelaySeconds: 1,
    meter,
    meterByFunction,
    // Lambda's pollers long-poll 20 s; short polls would bill empty receives AWS does not make.
    pollWaitSeconds: 20,
    onInvoke: (s) => invocations.push(s),
    functionEnv: {
      CRAWLER_TEST_ALLOW_LOOPBACK_PORTS: demo.ports.join(','),
      FETCH_TIMEOUT_MS: '2000',
      POWERTOOLS_LOG_LEVEL: PROD_LOG_LEVEL,
    },
    logDir: mkdtempSync(path.join(os.tmpdir(), 'bench-logs-')),
    // One process per environment, as on Lambda: its whole CPU and its peak memory are its own; on the
    // Node of the functions' runtime.
    isolation: 'process',
    functionNode: functionNode().path,
  });
  try {
    const lanesByGroup = await fetchLanes(demo.hosts, sandbox.functionEnvironment('FrontierConsumer'));
    // As for Crawlee: the crawl starts once the emulators, the environments' start and earlier parts are done.
    const idleBefore = await waitForQuietMachine();
    const started = Date.now();
    const siteBefore = await demo.stats();
    const siteCpu = demo.pid === undefined ? undefined : cpuOfProcess(demo.pid);
    const processCpu = process.cpuUsage();
    const dynamodbPid = sandbox.emulators.dynamodbPid;
    const dynamodbCpu = dynamodbPid === undefined ? undefined : cpuOfProcess(dynamodbPid);
    const seeds = demo.seeds.slice(0, seedHosts);
    const crawlId = await submitCrawl(sandbox.target, {
      seeds,
      maxPages: ((site.pagesPerHost ?? 60) + 10) * seeds.length,
      maxDepth,
    });
    await waitForIdle(sandbox.target, 540_000);
    const seconds = (Date.now() - started) / 1000;
    const siteAfter = await demo.stats();
    const siteNow = demo.pid === undefined ? undefined : cpuOfProcess(demo.pid);
    const siteCpuMs = siteCpu === undefined || siteNow === undefined ? undefined : siteNow - siteCpu;
    const usedCpu = process.cpuUsage(processCpu);
    const processCpuMs = (usedCpu.user + usedCpu.system) / 1000;
    const dynamodbNow = dynamodbPid === undefined ? undefined : cpuOfProcess(dynamodbPid);
    const dynamodbCpuMs =
      dynamodbCpu === undefined || dynamodbNow === undefined ? undefined : dynamodbNow - dynamodbCpu;
    const pages = await listPages(sandbox.target, crawlId);
    // A crawl that stored nothing has no per-page figures: say so, not Infinity dollars per page.
    if (pages.length === 0)
      throw new Error(`the metered crawl stored no page; the functions' logs are in ${sandbox.logFile}`);
    const urls = await listUrls(sandbox.target, crawlId);
    const links = pages.reduce((n, p) => n + Number(p.linkCount ?? 0), 0);
    const lastEffect = Math.max(
      ...pages.map((p) => Date.parse(String(p.storedAt))),
      ...urls.map((u) => Date.parse(String(u.outcomeAt ?? '')) || 0),
    );
    // Give the workers' piped output a moment to reach the file.
    await new Promise((r) => setTimeout(r, 500));
    const log = readFileSync(sandbox.logFile, 'utf8');
    const lines = log.split('\n').filter((l) => l.trim());
    const metrics = new Set<string>();
    const logsByService: Record<string, { bytes: number; lines: number }> = {};
    for (const line of lines) {
      const record = JSON.parse(line) as {
        _aws?: {
          CloudWatchMetrics?: Array<{
            Namespace: string;
            Dimensions: string[][];
            Metrics: Array<{ Name: string }>;
          }>;
        };
      } & Record<string, unknown>;
      const service = logsByService[String(record.service ?? 'unknown')] ?? { bytes: 0, lines: 0 };
      service.bytes += Buffer.byteLength(line) + 1;
      service.lines++;
      logsByService[String(record.service ?? 'unknown')] = service;
      for (const d of record._aws?.CloudWatchMetrics ?? [])
        for (const m of d.Metrics)
          for (const dims of d.Dimensions)
            metrics.add(`${d.Namespace}/${m.Name}/${dims.map((k) => `${k}=${String(record[k])}`).join(',')}`);
    }
    // A stored page is its URL record, so the URL records are everything kept per page.
    const storedBytes = urls.reduce((n, item) => n + itemBytes(item) + 100, 0);
    return {
      pages: pages.length,
      links,
      seconds,
      crawlSeconds: (lastEffect - started) / 1000,
      ...crawlTimeline(pages, started),
      connectionsPerRequest:
        (siteAfter.connections - siteBefore.connections) /
        Math.max(1, siteAfter.requests - siteBefore.requests),
      meter,
      meterByFunction,
      logsByService,
      edgeLogBytes: await edgeLogBytes(sandbox.target, crawlId),
      invocations,
      logBytes: Buffer.byteLength(log),
      logLines: lines.length,
      customMetrics: metrics.size,
      storedBytes,
      processCpuMs,
      ...(dynamodbCpuMs === undefined ? {} : { dynamodbCpuMs }),
      ...(siteCpuMs === undefined ? {} : { siteCpuMs }),
      ...(idleBefore === undefined ? {} : { idleBefore }),
      lanesByGroup,
    };
  } finally {
    await sandbox.stop();
    await demo.stop();
  }
}

/**
 * Lambda duration is the measured handler time, with its CPU part stretched to the function's memory (see
 * cpuStretch), plus a modelled latency per fetch, divided by the groups fetched side by side (records of one
 * group are fetched in order). A fetch waits `requestMs` for its answer, and `connectMs` more when it opens a
 * connection (TCP and TLS 1.3 handshakes: two round trips of 50 ms); how many fetches open one is measured
 * (the demo site counts the connections it accepts). Two latencies are reported; the budget uses the first.
 */
interface FetchLatency {
  readonly connectMs: number;
  readonly requestMs: number;
}
const FETCH_LATENCY: FetchLatency = { connectMs: 100, requestMs: 200 };
const SLOW_FETCH_LATENCY: FetchLatency = { connectMs: 100, requestMs: 900 };
const onNewConnection = (l: FetchLatency) => l.connectMs + l.requestMs;
/**
 * Lambda gives a function CPU in proportion to its memory, the equivalent of one vCPU at 1,769 MB
 * (https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html). The sandbox runs each function
 * on a whole core, so its CPU time (see cpuOf) takes this many times longer on Lambda.
 */
const FULL_VCPU_MB = 1_769;
const cpuStretch = (memoryMb: number) => Math.max(1, FULL_VCPU_MB / memoryMb);
/** Lambda's own log lines per invocation (START, END, REPORT), about this many bytes together. */
const PLATFORM_LOG_BYTES = 340;
/** CloudWatch Logs bills each event's bytes plus this much metadata per event. */
const LOG_EVENT_OVERHEAD_BYTES = 26;

/**
 * The fetch latencies one crawler invocation waits through, one after another: groups fetch side by side,
 * and each group's records a few at a time where its robots.txt allows (lanes), one at a time otherwise.
 */
function fetchRounds(i: InvocationStats, lanesByGroup: Readonly<Record<string, number>>): number {
  return Math.max(
    0,
    ...Object.entries(i.groupSizes).map(([group, n]) => Math.ceil(n / (lanesByGroup[group] ?? 1))),
  );
}

/** Modelled dollars of one metered crawl, by service, from bench/prices.json. */
function costOf(run: CrawlRun, latency = FETCH_LATENCY) {
  const fetchLatencyMs = latency.requestMs + latency.connectMs * run.connectionsPerRequest;
  const entries = Object.entries(run.meter);
  const sum = (filter: (k: string) => boolean, field: 'units' | 'requests' = 'units') =>
    entries.filter(([k]) => filter(k)).reduce((t, [, v]) => t + v[field], 0);
  const readOps = /GetItem|BatchGet|Query|Scan|\.Get$|\(read\)$/;
  const isDdb = (k: string) => serviceOf(k) === 'DynamoDB';
  const rru = sum((k) => isDdb(k) && readOps.test(k));
  const wru = sum((k) => isDdb(k) && !readOps.test(k));
  let gbSeconds = 0;
  /** GB-seconds by function and by part: the measured handler time, the CPU stretch, the modelled fetches. */
  const lambdaParts: Record<string, { measured: number; stretch: number; fetchWait: number }> = {};
  for (const i of run.invocations) {
    const gb = i.memoryMb / 1024;
    const stretch = cpuOf(i) * (cpuStretch(i.memoryMb) - 1);
    const fetchWait = i.functionId.startsWith('FrontierConsumer')
      ? fetchLatencyMs * fetchRounds(i, run.lanesByGroup)
      : 0;
    const parts = lambdaParts[functionName(i.functionId)] ?? { measured: 0, stretch: 0, fetchWait: 0 };
    parts.measured += (i.durationMs / 1000) * gb;
    parts.stretch += (stretch / 1000) * gb;
    parts.fetchWait += (fetchWait / 1000) * gb;
    lambdaParts[functionName(i.functionId)] = parts;
    gbSeconds += ((i.durationMs + stretch + fetchWait) / 1000) * gb;
  }
  // X-Ray bills each trace of a function with active tracing: read from the template, not assumed.
  const fns = Object.entries(templateResources()).filter(([, r]) => r.Type === 'AWS::Lambda::Function');
  const traced = new Set(
    fns
      .filter(([, r]) => (r.Properties?.TracingConfig as { Mode?: string } | undefined)?.Mode === 'Active')
      .map(([id]) => id),
  );
  const tracedInvocations = run.invocations.filter((i) => traced.has(i.functionId)).length;
  // Lambda's START, END and REPORT lines are INFO platform logs: not written where the template sets the
  // function's system log level above INFO.
  const platformLogged = new Set(
    fns
      .filter(([, r]) => {
        const level = (r.Properties?.LoggingConfig as { SystemLogLevel?: string } | undefined)
          ?.SystemLogLevel;
        return level === undefined || level === 'INFO' || level === 'DEBUG';
      })
      .map(([id]) => id),
  );
  const platformLines = run.invocations.filter((i) => platformLogged.has(i.functionId)).length;
  const logGb =
    (run.logBytes +
      run.logLines * LOG_EVENT_OVERHEAD_BYTES +
      platformLines * (PLATFORM_LOG_BYTES + 3 * LOG_EVENT_OVERHEAD_BYTES)) /
    1e9;
  const dollars = {
    sqs:
      (sum((k) => serviceOf(k) === 'SQS' && k.endsWith('(fifo)')) / 1e6) * (prices.sqsFifoPerMillion ?? 0) +
      (sum((k) => serviceOf(k) === 'SQS' && !k.endsWith('(fifo)')) / 1e6) *
        (prices.sqsStandardPerMillion ?? 0),
    dynamodb:
      (wru / 1e6) * (prices.dynamodbPerMillionWru ?? 0) + (rru / 1e6) * (prices.dynamodbPerMillionRru ?? 0),
    s3:
      (sum((k) => k === 'S3.PutObject', 'requests') / 1000) * (prices.s3PutPer1000 ?? 0) +
      (sum((k) => k === 'S3.GetObject', 'requests') / 1000) * (prices.s3GetPer1000 ?? 0),
    lambda:
      (run.invocations.length / 1e6) * (prices.lambdaPerMillionRequests ?? 0) +
      gbSeconds * (prices.lambdaArmPerGbSecond ?? 0),
    logs: logGb * (prices.cloudwatchLogsIngestPerGb ?? 0),
    xray: (tracedInvocations / 1e6) * (prices.xrayPerMillionTraces ?? 0),
  };
  return {
    dollars,
    total: Object.values(dollars).reduce((a, b) => a + b, 0),
    gbSeconds,
    lambdaParts,
    tracedFunctions: traced.size,
    platformLines,
  };
}

/**
 * The ranking's share of a metered crawl: the ranker's own requests and its pollers', its invocations and
 * logs, and the parser's sends to the links queue (the parser's only sends to a standard queue).
 */
function rankingShare(run: CrawlRun) {
  const id = (prefix: string) => Object.keys(run.meterByFunction).find((k) => k.startsWith(prefix)) ?? prefix;
  const rankerId = id('LinksConsumer');
  const meter: Counts = structuredClone(run.meterByFunction[rankerId] ?? {});
  const parserSends = run.meterByFunction[id('ParseQueueConsumer')]?.['SQS.SendMessageBatch (standard)'];
  if (parserSends) mergeCounts(meter, { 'SQS.SendMessageBatch (standard)': parserSends });
  const logs = run.logsByService.ranker ?? { bytes: 0, lines: 0 };
  const invocations = run.invocations.filter((i) => i.functionId === rankerId);
  const { dollars: cost, total: rankingTotal } = costOf({
    ...run,
    meter,
    invocations,
    logBytes: logs.bytes,
    logLines: logs.lines,
  });
  const per = (d: number) => perMillionPages(d, run.pages);
  return {
    perMillion: per(rankingTotal),
    sqs: per(cost.sqs),
    dynamodb: per(cost.dynamodb),
    s3: per(cost.s3),
    lambda: per(cost.lambda),
    logs: per(cost.logs),
    objects: meter['S3.PutObject']?.requests ?? 0,
    edgeLogBytesPerPage: run.edgeLogBytes / run.pages,
    countWruPerPage: (meter['DynamoDB.PutItem']?.units ?? 0) / run.pages,
  };
}

/**
 * What the stack costs a month whatever it crawls: alarms and dashboards (counted in the template), the
 * custom metrics the functions emitted (counted in their logs), and the event source mappings' pollers,
 * which long-poll (20 s) even on an empty queue: at least 5 per mapping with MaximumConcurrency set
 * (modelled from AWS's documentation, not measured).
 */
function fixedMonthly(run: CrawlRun) {
  const resources = Object.values(templateResources());
  const count = (type: string) => resources.filter((r) => r.Type === type).length;
  const mappings = resources.filter((r) => r.Type === 'AWS::Lambda::EventSourceMapping');
  const receivesPerPollerMonth = 3 * 60 * 24 * 30;
  const pollers = mappings.reduce(
    (n, m) => n + ((m.Properties?.ScalingConfig as object | undefined) ? 5 : 2),
    0,
  );
  const parts = {
    alarms: count('AWS::CloudWatch::Alarm') * (prices.cloudwatchAlarmPerMonth ?? 0),
    dashboards: count('AWS::CloudWatch::Dashboard') * (prices.cloudwatchDashboardPerMonth ?? 0),
    metrics: run.customMetrics * (prices.cloudwatchCustomMetricPerMonth ?? 0),
    pollers: ((pollers * receivesPerPollerMonth) / 1e6) * (prices.sqsFifoPerMillion ?? 0),
  };
  return { ...parts, total: Object.values(parts).reduce((a, b) => a + b, 0), pollerCount: pollers };
}

const perMillionPages = (dollars: number, pages: number) => (dollars / pages) * 1e6;

async function benchCrawl(paired: boolean): Promise<void> {
  // A crawl of a million pages spans many hosts (one host at a polite pace would take days), so the site
  // has 16 hosts, i.e. 16 FIFO message groups. 15 are crawlable (one's robots.txt answers 500):
  // 15 × 140 > 2,000 pages. A single-host crawl is measured after it.
  // The pipeline's pages per second and CPU per page move by a sixth from one crawl to the next on an idle
  // machine, as Crawlee's do: five crawls, each on a new sandbox and site, each followed by its Crawlee run
  // when the comparison is asked for; every figure but the ratios comes from the crawl whose pages per
  // second is the median.
  const settings = paired ? crawleeSettings() : undefined;
  const runs: CrawlRun[] = [];
  for (let i = 0; i < CRAWL_RUNS; i++) {
    runs.push(await meteredCrawl(CRAWL_SITE, CRAWL_SITE.hostCount, 30));
    if (settings) pairedCrawleeRuns.push(await crawleeRun(settings.concurrency, settings.attempts));
  }
  const speed = (r: CrawlRun) => r.pages / r.crawlSeconds;
  const run = [...runs].sort((x, y) => speed(x) - speed(y))[Math.floor(runs.length / 2)] as CrawlRun;
  const { pages: n, links, seconds, crawlSeconds, meter } = run;
  pipelineThroughput = { pagesPerSecond: n / crawlSeconds, pages: n };
  const measuredWhole = runs.every((r) =>
    r.invocations.every((i) => i.environmentCpuMs !== undefined || i.activeMs === undefined),
  );
  const functionsCpu = run.invocations.reduce((t, i) => t + cpuOf(i), 0);
  const cpuPerPage = (r: CrawlRun) => r.invocations.reduce((t, i) => t + cpuOf(i), 0) / r.pages;
  pipelineCpuMsPerPage = measuredWhole ? median(runs.map(cpuPerPage)) : undefined;
  const jsCpuPerPage = (r: CrawlRun) => r.invocations.reduce((t, i) => t + jsCpuOf(i), 0) / r.pages;
  pipelineJsCpuMsPerPage = median(runs.map(jsCpuPerPage));
  pipelineRuns = runs.map((r) => ({
    pagesPerSecond: speed(r),
    cpuMsPerPage: cpuPerPage(r),
    jsCpuMsPerPage: jsCpuPerPage(r),
  }));
  const crawlerBatches = run.invocations.filter((i) => i.functionId.startsWith('FrontierConsumer'));
  crawlLanes = run.lanesByGroup;
  groupsPerCrawlerBatch =
    crawlerBatches.reduce((t, i) => t + i.groups, 0) / Math.max(1, crawlerBatches.length);
  const cpuByFunction: Record<
    string,
    { whole: number; js: number; gc: number; pool: number; kinds: boolean }
  > = {};
  for (const i of run.invocations) {
    const fn = functionName(i.functionId);
    const sum = cpuByFunction[fn] ?? { whole: 0, js: 0, gc: 0, pool: 0, kinds: true };
    sum.whole += cpuOf(i) / n;
    sum.js += jsCpuOf(i) / n;
    sum.gc += (i.cpuByKindMs?.gc ?? 0) / n;
    sum.pool += (i.cpuByKindMs?.pool ?? 0) / n;
    sum.kinds &&= i.cpuByKindMs !== undefined;
    cpuByFunction[fn] = sum;
  }
  pipelineCpuSplit = Object.entries(cpuByFunction)
    .sort()
    .map(
      ([fn, ms]) =>
        `${fn} ${round(ms.whole, 1)}${measuredWhole ? ` (JS ${round(ms.js, 1)}${ms.kinds ? `, V8 helpers/GC ${round(ms.gc, 1)}, thread pool ${round(ms.pool, 1)}` : ''})` : ''}`,
    )
    .join(', ');
  report({
    name: 'sandbox throughput',
    value: round(n / crawlSeconds, 1),
    unit: `pages/s, the median of ${runs.length} crawls, each on a new sandbox and site (${runs.map((r) => round(speed(r), 1)).join(', ')}; the median one: ${n} pages on ${CRAWL_SITE.hostCount} hosts, ${round(links / n, 1)} links/page, in ${round(crawlSeconds, 1)} s from submit to the crawl's last page or URL outcome; every queue was idle at ${round(seconds, 1)} s, after the ranker's batching window and the idle check; started once the machine was ${run.idleBefore === undefined ? 'not checked' : `${Math.round(run.idleBefore * 100)}% idle`})`,
    reproduce: 'npm run bench',
  });
  report({
    name: 'crawl timeline',
    value: round(run.storedBy.all, 1),
    unit: `s from submit to the last stored page; half the pages stored by ${round(run.storedBy.half, 1)} s and nine tenths by ${round(run.storedBy.most, 1)} s; each host's last page at ${run.hostDone.map((t) => round(t, 1)).join(', ')} s. Hosts finishing one after another, rather than together, mean a few hosts were crawled at a time: one per crawler invocation, whose batch is mostly one host's URLs, started in order`,
    reproduce: 'npm run bench -- --only crawl',
  });
  {
    // Where the machine's cores went during the crawl: what bounds the sandbox's pages per second.
    const perPage = (ms: number) => round(ms / n, 1);
    const busy =
      (run.processCpuMs + (run.dynamodbCpuMs ?? 0) + (run.siteCpuMs ?? 0) + functionsCpu) /
      (seconds * 1000 * os.cpus().length);
    report({
      name: 'sandbox CPU per page, by part',
      value: perPage(run.processCpuMs + (run.dynamodbCpuMs ?? 0) + functionsCpu),
      unit: `CPU-ms per page: the functions ${perPage(functionsCpu)} (${measuredWhole ? 'their environments, start-up not included' : 'their JS threads'}: ${pipelineCpuSplit}), the bench's process (fauxqs, the bench) ${perPage(run.processCpuMs)}, DynamoDB Local ${run.dynamodbCpuMs === undefined ? 'not measured' : perPage(run.dynamodbCpuMs)}, and apart from these the demo site (its own process) ${run.siteCpuMs === undefined ? 'not measured' : perPage(run.siteCpuMs)}; ${Math.round(busy * 100)}% of ${os.cpus().length} cores over the crawl`,
      reproduce: 'npm run bench -- --only crawl',
    });
    // Peak memory by function, against what Lambda would give it.
    const peaks = peakMemory(run.invocations);
    if (peaks.byFunction.size > 0)
      report({
        name: 'peak memory by function',
        value: round(peaks.worstShare, 2),
        unit: `of the configured memory, at most (${peaks.line}): each environment's peak resident memory (VmHWM) on Node ${functionNode().version}, as Lambda's "Max Memory Used"`,
        budget: '≤ 0.8',
        ok: peaks.worstShare <= 0.8,
        reproduce: 'npm run bench -- --only crawl',
      });
  }
  const { dollars: cost, total, gbSeconds, lambdaParts, tracedFunctions, platformLines } = costOf(run);
  const perMillion = perMillionPages(total, n);
  const { dollars: slow, total: slowTotal } = costOf(run, SLOW_FETCH_LATENCY);
  const perMillionSlow = perMillionPages(slowTotal, n);
  const fixed = fixedMonthly(run);
  // URL records, stored pages among them, kept a month with point-in-time recovery on.
  const storagePerMillion =
    (((run.storedBytes / n) * 1e6) / 1e9) *
    ((prices.dynamodbStoragePerGbMonth ?? 0) + (prices.dynamodbPitrPerGbMonth ?? 0));
  const requests = Object.values(meter).reduce((t, v) => t + v.requests, 0);
  console.log('    AWS requests by operation (requests / billed units):');
  for (const [k, v] of Object.entries(meter).sort())
    console.log(`      ${k}: ${v.requests} / ${round(v.units, 1)}`);
  requestsByOperation = Object.fromEntries(
    Object.entries(meter)
      .sort()
      .map(([k, v]) => [
        k,
        { requests: v.requests, units: round(v.units, 1), perPage: round(v.requests / n, 3) },
      ]),
  );
  // The same requests by the function that made them (its pollers' receives and deletes included).
  requestsByFunction = Object.fromEntries(
    Object.entries(run.meterByFunction)
      .sort()
      .map(([fn, counts]) => [
        functionName(fn),
        Object.fromEntries(
          Object.entries(counts)
            .sort()
            .map(([k, v]) => [k, { requests: v.requests, unitsPerPage: round(v.units / n, 3) }]),
        ),
      ]),
  );
  report({
    name: 'AWS requests per page',
    value: round(requests / n, 2),
    unit: 'requests (by operation: bench/results/bench.json)',
    reproduce: 'npm run bench',
  });

  // Naive baseline from the same crawl volumes: one request per message, one conditional write per
  // discovered link, every body through S3.
  const pageWru =
    (meter['DynamoDB.PutItem']?.units ?? n) / Math.max(1, meter['DynamoDB.PutItem']?.requests ?? n);
  const naive = {
    sqs: ((n * 6) / 1e6) * (prices.sqsFifoPerMillion ?? 0),
    dynamodb: ((links + n * (pageWru + 4)) / 1e6) * (prices.dynamodbPerMillionWru ?? 0),
    s3: (n / 1000) * (prices.s3PutPer1000 ?? 0) + (n / 1000) * (prices.s3GetPer1000 ?? 0),
    lambda:
      ((n * 2) / 1e6) * (prices.lambdaPerMillionRequests ?? 0) +
      gbSeconds * (prices.lambdaArmPerGbSecond ?? 0),
    // The same logs and traces: the baseline differs in requests, not in observability.
    logs: cost.logs,
    xray: cost.xray,
  };
  const naivePerMillion = perMillionPages(
    Object.values(naive).reduce((a, b) => a + b, 0),
    n,
  );
  const part = (d: number) => round(perMillionPages(d, n));
  report({
    name: 'variable cost',
    value: round(perMillion),
    unit: `$ per million pages (SQS ${part(cost.sqs)}, DynamoDB ${part(cost.dynamodb)}, S3 ${part(cost.s3)}, Lambda ${part(cost.lambda)}, CloudWatch Logs ${part(cost.logs)} at ${PROD_LOG_LEVEL}, X-Ray ${part(cost.xray)} (${tracedFunctions} traced functions); requests and units counted, ${onNewConnection(FETCH_LATENCY)} ms per fetch on a new connection (${FETCH_LATENCY.connectMs} of them the handshakes; ${round(run.connectionsPerRequest, 2)} connections per fetch measured) and CPU at the functions' memory (1 vCPU per ${FULL_VCPU_MB} MB) modelled; pages of ${CRAWL_SITE.pageTextBytes} bytes of text)`,
    budget: '≤ $3',
    ok: perMillion <= 3,
    reproduce: 'npm run bench',
  });
  // Where the Lambda dollars go, and INIT (billed since August 2025): the sandbox's cold starts are inside
  // their invocations' measured time, at the rate a short crawl starts environments.
  const perGbS = prices.lambdaArmPerGbSecond ?? 0;
  const lambdaSplit = Object.entries(lambdaParts)
    .sort()
    .map(
      ([fn, p]) =>
        `${fn} ${round(perMillionPages((p.measured + p.stretch + p.fetchWait) * perGbS, n))} (handler time ${round(perMillionPages(p.measured * perGbS, n))}, CPU stretch ${round(perMillionPages(p.stretch * perGbS, n))}${p.fetchWait > 0 ? `, fetch wait ${round(perMillionPages(p.fetchWait * perGbS, n))}` : ''})`,
    )
    .join('; ');
  const cold = run.invocations.filter((i) => i.initMs !== undefined);
  report({
    name: 'Lambda cost by function',
    value: part(cost.lambda),
    unit: `$ per million pages: ${lambdaSplit}; requests ${part((run.invocations.length / 1e6) * (prices.lambdaPerMillionRequests ?? 0))}. INIT counted: ${cold.length} cold starts (${round((100 * cold.length) / Math.max(1, run.invocations.length), 1)}% of invocations, mean ${round(cold.reduce((t, i) => t + (i.initMs ?? 0), 0) / Math.max(1, cold.length), 0)} ms) inside their invocations' handler time; AWS reports under 1% of invocations for steady loads`,
    reproduce: 'npm run bench',
  });
  const ranking = rankingShare(run);
  report({
    name: 'ranking cost (online counts and edge log)',
    value: round(ranking.perMillion),
    unit: `$ per million pages, inside the variable cost (SQS ${round(ranking.sqs)}, DynamoDB ${round(ranking.dynamodb)}, S3 ${round(ranking.s3)}, Lambda ${round(ranking.lambda)}, Logs ${round(ranking.logs)}): the parser's sends to the links queue, the ranker's polls, count writes and edge log PUTs (${ranking.objects} edge log objects and ${round(ranking.countWruPerPage, 3)} count write units per page, for ${n} pages)`,
    reproduce: 'npm run bench',
  });
  // Athena bills the bytes a query scans, at least 10 MB; the query reads the whole crawl's edge log.
  const athenaRun = (pages: number) =>
    (Math.max(10e6, ranking.edgeLogBytesPerPage * pages) / 1e12) * (prices.athenaPerTbScanned ?? 0);
  report({
    name: 'exact ranking run (Athena)',
    value: round(athenaRun(1e6), 4),
    unit: `$ per run over a million-page crawl (${round(ranking.edgeLogBytesPerPage, 0)} bytes of gzip'd edge log per page scanned at $${prices.athenaPerTbScanned}/TB, 10 MB minimum: $${round(athenaRun(0), 5)} for a small crawl); modelled from the measured log size`,
    reproduce: 'npm run bench',
  });
  report({
    name: 'variable cost at 1 s per fetch',
    value: round(perMillionSlow),
    unit: `$ per million pages (Lambda ${part(slow.lambda)}: slow sites bill the crawler's wait; ${onNewConnection(SLOW_FETCH_LATENCY)} ms per fetch on a new connection, ${SLOW_FETCH_LATENCY.requestMs} on a kept one)`,
    reproduce: 'npm run bench',
  });
  report({
    name: 'log volume',
    value: round(run.logBytes / n, 0),
    unit: `bytes per page at ${PROD_LOG_LEVEL} (${round(run.logLines / n, 2)} lines per page), plus Lambda's START/END/REPORT lines for ${platformLines} of ${run.invocations.length} invocations (the others' functions log the platform at WARN)`,
    reproduce: 'npm run bench',
  });
  report({
    name: 'fixed monthly cost',
    value: round(fixed.total),
    unit: `$ per month per stack, modelled (alarms ${round(fixed.alarms)}, dashboard ${round(fixed.dashboards)}, ${run.customMetrics} custom metrics ${round(fixed.metrics)}, ${fixed.pollerCount} idle SQS pollers ${round(fixed.pollers)})`,
    reproduce: 'npm run bench',
  });
  report({
    name: 'storage and PITR',
    value: round(storagePerMillion),
    unit: `$ per million pages kept a month (${round(run.storedBytes / n, 0)} bytes stored per page: URL records, stored pages among them)`,
    reproduce: 'npm run bench',
  });
  for (const volume of [1e6, 1e7])
    report({
      name: `cost at ${volume / 1e6} M pages a month`,
      value: round(perMillion + (fixed.total / volume) * 1e6 + storagePerMillion),
      unit: '$ per million pages: variable + fixed share + a month of storage',
      reproduce: 'npm run bench',
    });
  report({
    name: 'saving over the naive baseline',
    value: round(naivePerMillion / perMillion, 1),
    unit: `× (naive $${round(naivePerMillion)} per million pages)`,
    budget: '≥ 4×',
    ok: naivePerMillion / perMillion >= 4,
    reproduce: 'npm run bench',
  });
}

/** The worst case for cost: one host, so one FIFO group, fetched in order. Reported, not budgeted. */
async function benchSingleHost(): Promise<void> {
  const pagesPerHost = flags.quick ? 60 : 300;
  const run = await meteredCrawl({ pagesPerHost, extraLinksPerPage: 50 }, 1, 6);
  const { dollars: cost, total } = costOf(run);
  const perMillion = perMillionPages(total, run.pages);
  report({
    name: 'modelled cost, single-host crawl',
    value: round(perMillion),
    unit: `$ per million pages (${run.pages} pages of one host, ${round(run.pages / run.crawlSeconds, 1)} pages/s; SQS ${round(perMillionPages(cost.sqs, run.pages))}, DynamoDB ${round(perMillionPages(cost.dynamodb, run.pages))}, Lambda ${round(perMillionPages(cost.lambda, run.pages))})`,
    reproduce: 'npm run bench -- --only onehost',
  });
}

/**
 * Latency of a deep chain: every page links only to the next, so each hop waits for a whole pass through
 * both queues (the parse queue's batching window included). Reported, not budgeted.
 */
async function benchChain(): Promise<void> {
  const hops = 30;
  const demo = await startDemoSite();
  const sandbox = await startSandbox({
    outputs: CRAWLER_OUTPUTS,
    retryDelaySeconds: 1,
    pollWaitSeconds: 20,
    functionEnv: { CRAWLER_TEST_ALLOW_LOOPBACK_PORTS: demo.ports.join(','), POWERTOOLS_LOG_LEVEL: 'WARN' },
  });
  try {
    const seed = `http://${demo.hosts[0]}/trap/1`;
    const submitted = Date.now();
    // A budget the chain's host cannot use up, so all of the chain is crawled; hops are measured one by one.
    const crawlId = await submitCrawl(sandbox.target, { seeds: [seed], maxPages: 1_000, maxDepth: hops });
    await waitForIdle(sandbox.target, 300_000);
    const pages = await listPages(sandbox.target, crawlId);
    const last = Math.max(...pages.map((p) => Date.parse(String(p.storedAt))));
    const seconds = (last - submitted) / 1000;
    const parseMapping = Object.values(templateResources()).find(
      (r) =>
        r.Type === 'AWS::Lambda::EventSourceMapping' &&
        JSON.stringify(r.Properties.FunctionName).includes('ParseQueueConsumer'),
    );
    const window = Number(parseMapping?.Properties.MaximumBatchingWindowInSeconds ?? 0);
    // Hop by hop: one trap page stored to the next. The chain's host also serves the demo's /slow page,
    // which holds the host's FIFO group (its URLs are fetched in order) until its fetch times out, so the
    // total includes that stall once; the median hop does not.
    const stored = pages
      .filter((p) => String(p.url).includes('/trap/'))
      .map((p) => Date.parse(String(p.storedAt)))
      .sort((a, b) => a - b);
    const hopMs = stored.slice(1).map((t, i) => t - (stored[i] as number));
    report({
      name: 'deep chain, submit to last page',
      value: round(seconds, 1),
      unit: `s for ${pages.length} pages, ${stored.length} of them the trap chain's, each one link deeper (median hop ${round(median(hopMs) / 1000, 2)} s, slowest ${round(Math.max(...hopMs) / 1000, 1)} s: the host's /slow page holding its FIFO group; the parse queue's batching window is ${window} s of each hop)`,
      reproduce: 'npm run bench -- --only chain',
    });
  } finally {
    await sandbox.stop();
    await demo.stop();
  }
}

/** Ten loopback hosts: robots.txt answers 404 (no rules), every other path `answer(host, res)`. */
async function tenHosts(
  answer: (host: number, res: http.ServerResponse) => void,
): Promise<{ ports: number[]; close(): Promise<void> }> {
  const servers = await Promise.all(
    Array.from({ length: 10 }, async (_, host) => {
      const s = http.createServer((req, res) => {
        if (req.url === '/robots.txt') return void res.writeHead(404).end();
        answer(host, res);
      });
      await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
      return s;
    }),
  );
  return {
    ports: servers.map((s) => (s.address() as AddressInfo).port),
    close: async () => void (await Promise.all(servers.map((s) => new Promise((r) => s.close(r))))),
  };
}

/** A crawler sandbox allowed to fetch from these loopback ports, recording its invocations. */
function loopbackSandbox(
  ports: number[],
  invocations: InvocationStats[],
  extra: Pick<SandboxOptions, 'isolation' | 'functionNode'> = {},
) {
  return startSandbox({
    outputs: CRAWLER_OUTPUTS,
    retryDelaySeconds: 1,
    onInvoke: (s) => invocations.push(s),
    functionEnv: { CRAWLER_TEST_ALLOW_LOOPBACK_PORTS: ports.join(','), POWERTOOLS_LOG_LEVEL: 'WARN' },
    ...extra,
  });
}

/** Ten hosts that each answer after 200 ms: one crawler batch must fetch them concurrently. */
async function benchBatchConcurrency(): Promise<void> {
  const hosts = await tenHosts((_, res) =>
    setTimeout(
      () => res.writeHead(200, { 'content-type': 'text/html' }).end('<title>slow host</title>'),
      200,
    ),
  );
  const { ports } = hosts;
  const invocations: InvocationStats[] = [];
  const sandbox = await loopbackSandbox(ports, invocations);
  const crawlerBatches = (from: number) =>
    invocations.slice(from).filter((i) => i.functionId.startsWith('FrontierConsumer'));
  const crawlOnce = async (path: string): Promise<InvocationStats[]> => {
    const from = invocations.length;
    const crawlId = await submitCrawl(sandbox.target, {
      seeds: ports.map((p) => `http://127.0.0.1:${p}${path}`),
      maxPages: 20,
      maxDepth: 0,
    });
    await waitFor(
      `ten pages of ${path}`,
      async () => (await listPages(sandbox.target, crawlId)).length === 10,
      {
        timeoutMs: 60_000,
      },
    );
    await waitForIdle(sandbox.target);
    return crawlerBatches(from);
  };
  try {
    // Warm every crawler container (robots cache, SDK connections, JIT) first, so what is measured is the
    // page fetches; which poller picks up a batch is up to the queue.
    const warmed = new Set<number>();
    for (let round = 0; round < 8 && warmed.size < 2; round++)
      for (const b of await crawlOnce(`/warm-${round}`)) warmed.add(b.container);
    const runs: InvocationStats[] = [];
    for (let round = 0; round < 5; round++) {
      const batches = await crawlOnce(`/page-${round}`);
      runs.push(batches.reduce((a, b) => (b.records > a.records ? b : a), batches[0] as InvocationStats));
    }
    const full = runs.filter((r) => r.records === 10).map((r) => r.durationMs);
    const ms = median(full);
    report({
      name: 'crawler batch of 10 hosts × 200 ms',
      value: ms,
      unit: `ms, median of ${full.length} batches of 10 records, one invocation each (all: ${full.join(', ')} ms; sequential would be 2000 ms)`,
      budget: '< 50% of sequential',
      ok: full.length >= 3 && ms < 10 * 200 * 0.5,
      reproduce: 'npm run bench -- --only batch',
    });
  } finally {
    await sandbox.stop();
    await hosts.close();
  }
}

/**
 * Peak memory at the largest pages the crawler takes: one batch of 10 hosts, each serving a gzip'd page just
 * under the crawler's body limit (2 MiB decoded), so ten bodies are fetched, decoded and Brotli'd side by side
 * and their parse messages go through the S3 claim check. Each function runs as a process on its runtime's
 * Node with Lambda's heap limits at its configured memory: past that memory, Lambda would end the environment
 * (Runtime.ExitError) and the batch would be retried until the DLQ.
 */
async function benchLargestPages(): Promise<void> {
  const PAGE_BYTES = 2 * 1024 * 1024 - 64 * 1024;
  const words = 'crawler queue message group lease parser budget claim page host fetch robots'.split(' ');
  const pageFor = (host: number) => {
    let html = `<html><head><title>large page ${host}</title></head><body>`;
    for (let i = 0; html.length < PAGE_BYTES; i++) {
      // Varied enough that Brotli cannot shrink it to nothing: a word chosen by a cheap hash of (host, i).
      const w = words[((i * 2654435761) ^ (host * 40503)) % words.length] as string;
      html += i % 40 === 0 ? `<p><a href="/p/${(i * 7 + host) % 500}">${w} ${i}</a> ` : `${w}${i % 97} `;
    }
    return zlib.gzipSync(Buffer.from(`${html}</body></html>`));
  };
  const bodies = Array.from({ length: 10 }, (_, host) => pageFor(host));
  const hosts = await tenHosts((host, res) =>
    res.writeHead(200, { 'content-type': 'text/html', 'content-encoding': 'gzip' }).end(bodies[host]),
  );
  const { ports } = hosts;
  const invocations: InvocationStats[] = [];
  // Each function as a process on its runtime's Node, so its peak memory is its own.
  const sandbox = await loopbackSandbox(ports, invocations, {
    isolation: 'process',
    functionNode: functionNode().path,
  });
  try {
    const crawlId = await submitCrawl(sandbox.target, {
      seeds: ports.map((p) => `http://127.0.0.1:${p}/large`),
      maxPages: 10,
      maxDepth: 0,
    });
    await waitFor(
      'ten large pages stored',
      async () => (await listPages(sandbox.target, crawlId)).length === 10,
      {
        timeoutMs: 120_000,
      },
    );
    await waitForIdle(sandbox.target);
    const peaks = peakMemory(invocations);
    const crawlerBatches = invocations.filter((i) => i.functionId.startsWith('FrontierConsumer'));
    const widest = crawlerBatches.reduce<InvocationStats | undefined>(
      (w, i) => (w === undefined || i.groups > w.groups ? i : w),
      undefined,
    );
    const failed = [...peaks.byFunction.values()].reduce((n, p) => n + p.failed, 0);
    report({
      name: 'peak memory at the largest pages',
      value: round(peaks.worstShare, 2),
      unit: `of the configured memory, at most (${peaks.line}): 10 hosts in one crawler batch, each page ${round(PAGE_BYTES / 2 ** 20, 2)} MiB decoded (gzip on the wire), on Node ${functionNode().version} with Lambda's heap limits; the widest crawler batch held ${widest?.records ?? 0} records of ${widest?.groups ?? 0} hosts`,
      budget: '≤ 0.9',
      ok: peaks.worstShare <= 0.9 && failed === 0,
      reproduce: 'npm run bench -- --only largest',
    });
  } finally {
    await sandbox.stop();
    await hosts.close();
  }
}

/** The machine's idle and busy CPU time so far (jiffies, all cores), from /proc/stat; undefined off Linux. */
function cpuTimes(): { idle: number; total: number } | undefined {
  try {
    const fields = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '')
      .trim()
      .split(/\s+/)
      .slice(1)
      .map(Number);
    // user nice system idle iowait irq softirq steal: idle and iowait are idle time.
    const total = fields.slice(0, 8).reduce((a, b) => a + b, 0);
    return { idle: (fields[3] ?? 0) + (fields[4] ?? 0), total };
  } catch {
    return undefined;
  }
}

/**
 * Wait until the machine is quiet (at least 90% of its CPU idle over a second), at most 60 s, so that what
 * ran just before (an earlier part's environments and emulators winding down, the sandbox's start) does not
 * share the cores with a measured crawl, the pipeline's or Crawlee's. Returns the idle share it ended on.
 * (Crawlee's CPU per page still varied from 4.7 to 7.6 ms between runs that started on an idle machine.)
 */
async function waitForQuietMachine(): Promise<number | undefined> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const before = cpuTimes();
    await new Promise((r) => setTimeout(r, 1_000));
    const after = cpuTimes();
    if (!before || !after) return undefined;
    const idle = (after.idle - before.idle) / Math.max(1, after.total - before.total);
    if (idle >= 0.9 || Date.now() > deadline) return idle;
  }
}

/**
 * Crawlee's CheerioCrawler on the same generated site with the same fetch concurrency as the sandbox
 * pipeline (crawler pollers × batch size), robots.txt respected, in memory. It does in one process what the
 * pipeline does through two queues and three tables, so the ratio is the price of durability and scale-out.
 */
/**
 * Crawlee's settings for the comparison, from the template: as many concurrent fetches as the crawler's
 * pollers × batch size, and as many attempts at a transient failure (the site's /slow page times out) as
 * the crawler makes: it retries on all but the frontier's last two receives (functions/crawler/failures.ts).
 */
function crawleeSettings(): { concurrency: number; attempts: number } {
  const crawlerMapping = Object.values(templateResources()).find(
    (r) =>
      r.Type === 'AWS::Lambda::EventSourceMapping' &&
      JSON.stringify(r.Properties.FunctionName).includes('FrontierConsumer'),
  );
  const props = crawlerMapping?.Properties ?? {};
  const concurrency =
    Number((props.ScalingConfig as { MaximumConcurrency?: number } | undefined)?.MaximumConcurrency ?? 2) *
    Number(props.BatchSize ?? 10);
  const frontier = Object.values(templateResources()).find(
    (r) => r.Type === 'AWS::SQS::Queue' && r.Properties.FifoQueue === true && r.Properties.RedrivePolicy,
  );
  const receives = Number(
    (frontier?.Properties.RedrivePolicy as { maxReceiveCount?: number } | undefined)?.maxReceiveCount ?? 5,
  );
  return { concurrency, attempts: transientRetries(receives) };
}

/**
 * Crawlee's CheerioCrawler on the same generated site with the same fetch concurrency as the sandbox
 * pipeline (crawler pollers × batch size), robots.txt respected, in memory. It does in one process what the
 * pipeline does through two queues and three tables, so the ratio is the price of durability and scale-out.
 */
async function benchCrawlee(): Promise<void> {
  const { concurrency, attempts } = crawleeSettings();
  // With the crawl part, its runs were made one after each metered crawl (benchCrawl). Alone, three runs,
  // each on a new site once the machine is quiet, and no ratio.
  const paired = pairedCrawleeRuns.length > 0 && pairedCrawleeRuns.length === pipelineRuns.length;
  const runs: CrawleeRun[] = [...pairedCrawleeRuns];
  if (runs.length === 0)
    for (let i = 0; i < CRAWLEE_RUNS; i++) runs.push(await crawleeRun(concurrency, attempts));
  const crawlee = median(runs.map((r) => r.pagesPerSecond));
  const crawleeCpuMsPerPage = median(runs.map((r) => r.cpuMsPerPage));
  const jsRuns = runs.flatMap((r) => (r.jsCpuMsPerPage === undefined ? [] : [r.jsCpuMsPerPage]));
  // Crawlee's JS thread alone (its main thread), beside the functions' JS threads.
  const crawleeJsCpuMsPerPage = jsRuns.length === runs.length ? median(jsRuns) : undefined;
  const { pages, seconds } =
    runs.find((r) => r.pagesPerSecond === crawlee) ?? (runs[0] as (typeof runs)[number]);
  const idle = runs.map((r) =>
    r.idleBefore === undefined ? 'not checked' : `${Math.round(r.idleBefore * 100)}%`,
  );
  const each = (f: (r: (typeof runs)[number]) => number) => runs.map((r) => round(f(r), 1)).join(', ');
  // Each pair's ratio, then their median: a slow minute slows both of its pair alike. A figure is paired
  // only when both sides measured it.
  const pairRatios = (key: 'pagesPerSecond' | 'cpuMsPerPage' | 'jsCpuMsPerPage', measured = true) =>
    paired && measured
      ? runs.map((r, i) => (pipelineRuns[i]?.[key] ?? Number.NaN) / (r[key] ?? Number.NaN))
      : [];
  const speedRatios = pairRatios('pagesPerSecond');
  const cpuRatios = pairRatios('cpuMsPerPage', pipelineCpuMsPerPage !== undefined);
  const jsRatios = pairRatios('jsCpuMsPerPage', crawleeJsCpuMsPerPage !== undefined);
  const ratioOf = (ratios: number[]) =>
    ratios.length > 0 && ratios.every(Number.isFinite) ? median(ratios) : undefined;
  const speedRatio = ratioOf(speedRatios);
  const cpuRatio = ratioOf(cpuRatios);
  const jsRatio = ratioOf(jsRatios);
  const pairsText = (ratios: number[]) =>
    ratios.length === 1
      ? 'one pair: a metered crawl and the Crawlee run made right after it on a new site'
      : `the median of ${ratios.length} pairs' ratios (${ratios.map((x) => round(x, 2)).join(', ')}), each a metered crawl and the Crawlee run made right after it on a new site`;
  const ours = pipelineThroughput?.pagesPerSecond;
  report({
    name: 'throughput vs Crawlee CheerioCrawler',
    value: speedRatio === undefined ? 'not measured' : round(speedRatio, 2),
    unit: `${speedRatio === undefined ? '' : `× Crawlee, ${pairsText(speedRatios)} `}(pipeline ${ours ? round(ours, 1) : '-'} pages/s${pipelineRuns.length > 1 ? `, the median of ${pipelineRuns.length} crawls (${pipelineRuns.map((r) => round(r.pagesPerSecond, 1)).join(', ')})` : ''}; CheerioCrawler ${round(crawlee, 1)} pages/s, the median of ${runs.length} runs (${each((r) => r.pagesPerSecond)}; ${pages} pages in ${round(seconds, 1)} s); Crawlee at ${concurrency} concurrent fetches (the crawler's pollers × batch size) and ${attempts} attempts at a page that times out, as the crawler makes, the pipeline at most that many, and per host ${describeLanes()} at a time${groupsPerCrawlerBatch ? `, and its batches held ${round(groupsPerCrawlerBatch, 1)} hosts on average` : ''}, on the same ${CRAWL_SITE.hostCount}-host site, both on ${functionNode().note}; each Crawlee run started once the machine was quiet (${idle.join(', ')} idle); load average ${os
      .loadavg()
      .map((l) => round(l, 1))
      .join(', ')})`,
    budget: '≥ 0.5×',
    ok: speedRatio === undefined ? undefined : speedRatio >= 0.5,
    reproduce: 'npm run bench -- --only crawl,crawlee',
    note: speedRatio === undefined ? 'run with the crawl part for the ratio' : undefined,
  });
  report({
    name: 'function CPU per page vs Crawlee',
    value: cpuRatio === undefined ? 'not measured' : round(cpuRatio, 2),
    unit: `${cpuRatio === undefined ? '' : `× Crawlee, ${pairsText(cpuRatios)} `}(functions ${pipelineCpuMsPerPage ? round(pipelineCpuMsPerPage, 1) : '-'} CPU-ms per page${pipelineRuns.length > 1 ? `, the median of ${pipelineRuns.length} crawls (${pipelineRuns.map((r) => round(r.cpuMsPerPage, 1)).join(', ')})` : ''}; in the median crawl by pages per second, ${pipelineCpuSplit}: their execution environments' whole CPU, one child process each, JS thread, GC and thread pool, start-up not included; CheerioCrawler ${round(crawleeCpuMsPerPage, 1)} CPU-ms per page, the median of ${runs.length} runs (${each((r) => r.cpuMsPerPage)}): its whole process, the site served from another; both on ${functionNode().note}. JS threads alone: functions ${round(pipelineJsCpuMsPerPage ?? 0, 1)}${crawleeJsCpuMsPerPage === undefined ? '' : `, CheerioCrawler ${round(crawleeJsCpuMsPerPage, 1)}`}${jsRatio === undefined ? '' : `, ${round(jsRatio, 2)} × by the pairs' median`})`,
    budget: '≤ 1.0×',
    ok: cpuRatio === undefined ? undefined : cpuRatio <= 1,
    reproduce: 'npm run bench -- --only crawl,crawlee',
    note: cpuRatio === undefined ? 'run with the crawl part for the ratio' : undefined,
  });
}

/** Crawlee runs when the comparison runs without the crawl part. */
const CRAWLEE_RUNS = 3;
type CrawleeRun = Awaited<ReturnType<typeof crawleeRun>>;

/** One Crawlee crawl of a new demo site, started once the machine is quiet. */
async function crawleeRun(concurrency: number, attempts: number) {
  const idleBefore = await waitForQuietMachine();
  // The site runs in a child process, so this process's CPU is Crawlee's alone.
  const demo = await startSiteProcess(CRAWL_SITE);
  try {
    // Crawlee runs on the functions' Node, in a process of its own: its whole CPU against theirs.
    const node = functionNode();
    const run = spawnSync(
      node.path,
      [
        '--import',
        'tsx',
        path.join(PROJECT_ROOT, 'bench', 'crawlee-process.ts'),
        JSON.stringify({
          seeds: demo.seeds,
          hosts: demo.hosts,
          concurrency,
          maxRequests: (CRAWL_SITE.pagesPerHost + 10) * CRAWL_SITE.hostCount,
          // The pipeline's fetch timeout in this bench (FETCH_TIMEOUT_MS) and its attempts, so /slow costs
          // both the same.
          navigationTimeoutSecs: 2,
          maxRequestRetries: attempts - 1,
        }),
      ],
      { cwd: PROJECT_ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 600_000 },
    );
    const lastLine = run.stdout.trim().split('\n').pop() ?? '';
    if (run.status !== 0 || !lastLine.startsWith('{'))
      throw new Error(`Crawlee process failed (${run.status ?? run.signal}): ${lastLine.slice(0, 300)}`);
    const result = JSON.parse(lastLine) as {
      pages: number;
      seconds: number;
      cpuMs: number;
      jsCpuMs?: number;
    };
    return {
      pages: result.pages,
      seconds: result.seconds,
      pagesPerSecond: result.pages / result.seconds,
      cpuMsPerPage: result.cpuMs / result.pages,
      ...(result.jsCpuMs === undefined ? {} : { jsCpuMsPerPage: result.jsCpuMs / result.pages }),
      ...(idleBefore === undefined ? {} : { idleBefore }),
    };
  } finally {
    await demo.stop();
  }
}

// 4. Developer loop ---------------------------------------------------------------------------------------

async function benchDevLoop(): Promise<void> {
  // A typo answers at once: the slowest of the bad-argument cases, run as a user runs them (issue #14).
  const badArgs = [['not-a-url'], ['--max-pages', 'abc'], ['--max-pages=-3'], ['--max-depth', '2.5']];
  const times = badArgs.map((args) => {
    const t = Date.now();
    const run = spawnSync('npm', ['start', '--silent', '--', ...args], {
      cwd: PROJECT_ROOT,
      encoding: 'utf8',
    });
    if (run.status !== 2) throw new Error(`npm start ${args.join(' ')} exited ${run.status}, not 2`);
    return Date.now() - t;
  });
  const worst = Math.max(...times);
  report({
    name: 'npm start answer to a bad argument',
    value: round(worst / 1000, 2),
    unit: `s, slowest of ${badArgs.length} (one line, exit 2, nothing started; all: ${times.join(', ')} ms)`,
    budget: '≤ 1 s',
    ok: worst <= 1_000,
    reproduce: 'npm run bench -- --only devloop --skip-npm-test',
  });
  for (const mode of ['cold', 'warm'] as const) {
    const demo = await startDemoSite();
    const started = Date.now();
    const sandbox = await startSandbox({
      outputs: CRAWLER_OUTPUTS,
      synth: mode === 'cold' ? 'always' : 'if-stale',
      retryDelaySeconds: 1,
      functionEnv: { CRAWLER_TEST_ALLOW_LOOPBACK_PORTS: demo.ports.join(','), POWERTOOLS_LOG_LEVEL: 'WARN' },
    });
    try {
      const crawlId = await submitCrawl(sandbox.target, { seeds: demo.seeds, maxPages: 50, maxDepth: 2 });
      await waitFor(
        'the first stored page',
        async () => (await listPages(sandbox.target, crawlId)).length > 0,
        {
          timeoutMs: 120_000,
          intervalMs: 50,
        },
      );
      report({
        name: `npm start to first stored page (${mode})`,
        value: round((Date.now() - started) / 1000, 1),
        unit: mode === 'cold' ? 's (with cdk synth and bundling)' : 's (cdk.out reused)',
        reproduce: 'npm run bench',
      });
    } finally {
      await sandbox.stop();
      await demo.stop();
    }
  }
  if (flags['skip-npm-test']) return;
  const started = Date.now();
  const out = spawnSync('npm', ['test'], {
    cwd: PROJECT_ROOT,
    encoding: 'utf8',
    env: { ...process.env, CI: 'true' },
  });
  if (out.status !== 0) {
    // Say which tests failed, so a red figure here can be chased without running npm test again.
    const failed = `${out.stdout}\n${out.stderr}`
      .split('\n')
      .filter((l) => /FAIL|AssertionError|Error:/.test(l))
      .slice(0, 20);
    console.log(`    npm test failed:\n${failed.map((l) => `      ${l}`).join('\n')}`);
  }
  report({
    name: 'npm test wall time',
    value: round((Date.now() - started) / 1000, 1),
    unit: `s (exit ${out.status})`,
    budget: '< 300 s',
    ok: out.status === 0 && Date.now() - started < 300_000,
    reproduce: 'time npm test',
  });
}

async function main(): Promise<void> {
  const started = Date.now();
  console.log(
    `bench on ${os.cpus().length} cores, Node ${process.version}${flags.quick ? ' (quick)' : ''}\n`,
  );
  const parts = new Set(
    flags.only
      ? flags.only.split(',')
      : ['packages', 'crawl', 'onehost', 'chain', 'batch', 'largest', 'crawlee', 'devloop'],
  );
  // Every part runs the bundles in cdk.out, so they are rebuilt from the current source first.
  synthesize();
  if (parts.has('packages')) await benchPackages();
  if (parts.has('crawl')) await benchCrawl(parts.has('crawlee'));
  if (parts.has('onehost')) await benchSingleHost();
  if (parts.has('chain')) await benchChain();
  if (parts.has('batch')) await benchBatchConcurrency();
  if (parts.has('largest')) await benchLargestPages();
  if (parts.has('crawlee')) await benchCrawlee();
  if (parts.has('devloop')) await benchDevLoop();
  // Only a full run replaces the committed results; a quick or partial one is kept aside (git-ignored).
  const partial = Boolean(flags.quick || flags.only);
  const outDir = partial ? path.join(RESULTS, 'partial') : RESULTS;
  mkdirSync(outDir, { recursive: true });
  const result = {
    date: new Date().toISOString(),
    node: process.version,
    cores: os.cpus().length,
    run: partial
      ? `partial: ${flags.quick ? '--quick ' : ''}${flags.only ? `--only ${flags.only}` : ''}`.trim()
      : 'full',
    prices,
    figures,
    requestsByOperation,
    requestsByFunction,
  };
  writeFileSync(path.join(outDir, 'bench.json'), `${JSON.stringify(result, null, 2)}\n`);
  const opsTable = requestsByOperation
    ? `\n## AWS requests of the metered crawl, by operation\n\n| operation | requests | billed units | requests per page |\n| --- | --- | --- | --- |\n${Object.entries(
        requestsByOperation,
      )
        .map(([k, v]) => `| ${k} | ${v.requests} | ${v.units} | ${v.perPage} |`)
        .join('\n')}\n`
    : '';
  const fnTable = requestsByFunction
    ? `\n## The same, by the function that made them (its pollers' receives and deletes included)\n\n| function | operation | requests | billed units per page |\n| --- | --- | --- | --- |\n${Object.entries(
        requestsByFunction,
      )
        .flatMap(([fn, ops]) =>
          Object.entries(ops).map(([k, v]) => `| ${fn} | ${k} | ${v.requests} | ${v.unitsPerPage} |`),
        )
        .join('\n')}\n`
    : '';
  const rows = figures.map(
    (f) =>
      `| ${f.name} | ${f.value} ${f.unit} | ${f.budget ?? '-'} | ${f.ok === undefined ? '-' : f.ok ? '✔' : '✖'} | \`${f.reproduce}\` |`,
  );
  writeFileSync(
    path.join(outDir, 'summary.md'),
    `# Benchmark results\n\n${result.date}, ${result.cores} cores, Node ${result.node}, ${result.run} run. Prices: bench/prices.json (${prices.date}).\n\n| figure | value | budget | ok | reproduce |\n| --- | --- | --- | --- | --- |\n${rows.join('\n')}\n${opsTable}${fnTable}`,
  );
  const missed = figures.filter((f) => f.ok === false);
  console.log(
    `\nbench finished in ${round((Date.now() - started) / 1000, 1)} s; results in ${path.relative(PROJECT_ROOT, outDir)}/`,
  );
  if (missed.length > 0) {
    console.error(`✖ ${missed.length} budget(s) missed: ${missed.map((f) => f.name).join(', ')}`);
    process.exit(1);
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
