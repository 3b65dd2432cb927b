import { spawnSync } from 'node:child_process';
import { mkdtempSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

// `npm start` as a user runs it, with arguments that can never work: one line, exit 2, and nothing started
// (no emulator, no synth). What it prints is the exact line; how fast is measured by hand (see the README).
const ROOT = path.join(import.meta.dirname, '..', '..');

function start(args: string[], env: NodeJS.ProcessEnv = process.env) {
  const run = spawnSync(process.execPath, ['--import', 'tsx', 'sandbox/start.ts', ...args], {
    cwd: ROOT,
    env,
    encoding: 'utf8',
    timeout: 60_000,
  });
  // Node's own warnings (the AWS SDK's Node 20 notice) are not the program's output.
  const lines = (s: string) => s.split('\n').filter((l) => l.trim() && !/^\(node:\d+\)|^\s/.test(l));
  return { code: run.status, out: lines(run.stdout), err: lines(run.stderr) };
}

describe('npm start refuses bad arguments before starting anything', () => {
  it.each([
    [['not-a-url'], '✖ seed "not-a-url" is not a crawlable URL: does not parse'],
    [
      ['ftp://example.com/'],
      '✖ seed "ftp://example.com/" is not a crawlable URL: scheme ftp: is not http or https',
    ],
    [['--max-pages=-3'], '✖ --max-pages must be a whole number from 1 to 1000000, got "-3"'],
    [['--max-pages', 'abc'], '✖ --max-pages must be a whole number from 1 to 1000000, got "abc"'],
    [['--max-depth', '2.5'], '✖ --max-depth must be a whole number from 0 to 100, got "2.5"'],
  ])('%j: one line, exit 2', (args, line) => {
    const r = start(args);
    expect(r.err).toEqual([line]);
    expect(r.out).toEqual([]);
    expect(r.code).toBe(2);
  });

  it('names a usage error and shows the usage, exit 2', () => {
    const r = start(['http://a.example/', 'http://b.example/']);
    expect(r.err[0]).toBe('✖ one URL at most, got 2');
    expect(r.err[1]).toMatch(/^usage: npm start --/);
    expect(r.code).toBe(2);
  });

  it('says Java is missing before it synthesizes or starts anything', () => {
    // A PATH with node and nothing else (node's own folder may hold java too): no java.
    const bin = mkdtempSync(path.join(os.tmpdir(), 'no-java-'));
    symlinkSync(process.execPath, path.join(bin, 'node'));
    const r = start([], { ...process.env, PATH: bin });
    expect(r.err).toHaveLength(1);
    expect(r.err[0]).toMatch(/^✖ DynamoDB Local needs Java 17 or newer, and `java` was not found on PATH/);
    expect(r.out).toEqual([]);
    expect(r.code).toBe(1);
  });
});
