import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listPages } from '../../cli/crawl-api';
import { PROJECT_ROOT } from '../../sandbox/sandbox';
import { waitForIdle } from '../../tooling/queues';
import type { SandboxFile } from '../../tooling/sandbox-file';
import { type Harness, startHarness } from './harness';

// The operator CLI as a user runs it: a separate process, pointed at this suite's sandbox through the same
// target file `npm start -- --keep` writes.
let h: Harness;
let dir: string;
let env: NodeJS.ProcessEnv;
beforeAll(async () => {
  h = await startHarness();
  dir = mkdtempSync(path.join(os.tmpdir(), 'crawler-cli-'));
  const file = path.join(dir, 'target.json');
  const e = h.sandbox.emulators;
  writeFileSync(
    file,
    JSON.stringify({
      stackName: 'Crawler-dev',
      outputs: h.sandbox.provisioned.outputs,
      endpoints: { sqs: e.sqsEndpoint, dynamodb: e.dynamodbEndpoint, s3: e.s3Endpoint },
      region: 'us-east-1',
      pid: process.pid,
    } satisfies SandboxFile),
  );
  // No AWS credentials reach the child: the sandbox target must not need them, and AWS must fail clearly.
  env = { ...process.env, CRAWLER_SANDBOX_TARGET: file, AWS_PROFILE: 'crawler-cli-test-none' };
  delete env.AWS_ACCESS_KEY_ID;
  delete env.AWS_SECRET_ACCESS_KEY;
});
afterAll(async () => {
  await h?.stop();
});

function cli(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', path.join(PROJECT_ROOT, 'cli', 'main.ts'), ...args],
      {
        cwd: PROJECT_ROOT,
        env,
      },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** stderr without Node's own warnings (the AWS SDK's Node 20 notice). */
const errorLines = (stderr: string) =>
  stderr.split('\n').filter((l) => l.startsWith('✖') || /^\s+at /.test(l) || /Error:/.test(l));

describe('operator CLI against the sandbox', () => {
  it('submits a crawl, reports its status and budget, and exports its pages as JSON lines', async () => {
    const seed = h.demo.seeds[2] as string;
    const submitted = await cli('submit', seed, '--max-pages', '6', '--max-depth', '1');
    expect(submitted.code, submitted.stderr).toBe(0);
    const crawlId = submitted.stdout.trim();
    expect(crawlId).toMatch(/^[0-9a-f-]{36}$/);
    await waitForIdle(h.target, 60_000);

    const status = await cli('status', '--crawl', crawlId);
    expect(status.code, status.stderr).toBe(0);
    // The seed's home page links to two pages of its host (the third link is off-site): 3 of 6 admitted.
    expect(status.stdout).toMatch(
      /^frontier 0 queued \/ 0 in flight \(DLQ 0\) · parse 0 queued \/ 0 in flight \(DLQ 0\) · links 0 queued \/ 0 in flight \(DLQ 0\) · pages 3 · .* · admitted 3\/6$/m,
    );

    const out = path.join(dir, 'pages.jsonl');
    const results = await cli('results', crawlId, '--out', out);
    expect(results.code, results.stderr).toBe(0);
    const lines = readFileSync(out, 'utf8').trim().split('\n');
    const stored = await listPages(h.target, crawlId);
    expect(lines).toHaveLength(stored.length);
    expect(lines.map((l) => JSON.parse(l).url).sort()).toEqual(stored.map((p) => p.url).sort());

    const dlq = await cli('dlq', 'parse');
    expect(dlq.code).toBe(0);
    expect(dlq.stdout.trim()).toBe('DLQ is empty');

    // The home page is linked by both pages it links to: online and exact agree, and the CLI says so.
    const rank = await cli('rank', crawlId, '--exact', '--top', '3');
    expect(rank.code, rank.stderr).toBe(0);
    expect(rank.stdout).toContain(`1. 2  ${seed}`);
    expect(rank.stdout).toMatch(/^exact \(duckdb, sql\/inlinks\.sql, [\d.]+ s\): \d+ URLs$/m);
    expect(rank.stdout).toMatch(/^online vs exact: 0 URLs differ .* top 3: \d in common$/m);
  });

  it('ends `status --watch` with a summary once the pipeline is idle', async () => {
    await waitForIdle(h.target, 60_000);
    const r = await cli('status', '--watch');
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    // Piped, it prints a line per poll (three idle polls), then the summary.
    expect(lines.length).toBeGreaterThanOrEqual(4);
    expect(lines.at(-1)).toBe('✔ idle: nothing queued or in flight');
    expect(lines.at(-2)).toBe(
      'frontier 0 queued / 0 in flight (DLQ 0) · parse 0 queued / 0 in flight (DLQ 0) · links 0 queued / 0 in flight (DLQ 0)',
    );
  });

  // Arguments that can never work: refused before any target is contacted, with one line and exit 2.
  it.each([
    [['submit'], 'submit needs at least one seed URL'],
    [['frobnicate'], 'unknown command "frobnicate"'],
    [
      ['submit', 'http://x.example/', '--max-pages', 'abc'],
      '--max-pages must be a whole number from 1 to 1000000, got "abc"',
    ],
    [
      ['submit', 'http://x.example/', '--max-pages=-3'],
      '--max-pages must be a whole number from 1 to 1000000, got "-3"',
    ],
    [
      ['submit', 'http://x.example/', '--max-depth', '2.5'],
      '--max-depth must be a whole number from 0 to 100, got "2.5"',
    ],
    [
      ['submit', 'http://a.example/', 'http://b.example/', '--max-pages', '1'],
      '--max-pages (1) is below the number of seeds (2)',
    ],
    [['dlq', 'nope'], 'name a queue of Crawler-dev: frontier, parse or links (got "nope")'],
    [['rank'], 'rank needs a crawlId (printed by submit)'],
    [['rank', 'c1', '--top', '0'], '--top must be a whole number from 1 to 1000, not "0"'],
    [['rank', 'c1', '--engine', 'spark'], '--engine must be athena or duckdb, not "spark"'],
    [['dlq'], 'dlq needs a queue name'],
    [['submit', 'ftp://x.example/'], 'seed "ftp://x.example/" is not a crawlable URL'],
    [['submit', 'not-a-url', '--target', 'aws'], 'seed "not-a-url" is not a crawlable URL'],
    [['status', '--target', 'mars'], '--target must be sandbox, localstack or aws, not "mars"'],
  ])('refuses %j with one clear line and exit 2, never a stack trace', async (args, message) => {
    const r = await cli(...args);
    expect(r.code, r.stderr).toBe(2);
    const lines = errorLines(r.stderr);
    expect(lines, r.stderr).toHaveLength(1);
    expect(lines[0]).toContain(message);
  });

  // Failures of the run itself: one line and exit 1.
  it.each([
    [['status', '--crawl', 'no-such-crawl'], 'no crawl no-such-crawl'],
    [['status', '--stack', 'Gift-dev'], 'the running sandbox holds Crawler-dev, not Gift-dev'],
    [['status', '--target', 'localstack', '--endpoint', 'http://127.0.0.1:9'], 'cannot reach the endpoint'],
    [['status', '--target', 'aws'], 'no AWS credentials found'],
  ])('fails %j with one clear line and exit 1, never a stack trace', async (args, message) => {
    const r = await cli(...args);
    expect(r.code).toBe(1);
    const lines = errorLines(r.stderr);
    expect(lines, r.stderr).toHaveLength(1);
    expect(lines[0]).toContain(message);
  });
});
