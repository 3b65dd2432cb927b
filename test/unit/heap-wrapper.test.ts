import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

// functions/kit/heap-wrapper.sh as Lambda runs it (AWS_LAMBDA_EXEC_WRAPPER): given the interpreter and the
// bootstrap's arguments, it execs them with the semi-space from V8_SEMI_SPACE_MB and the old generation's
// growth from V8_HEAP_GROWING_PERCENT. Node itself reports back the flags it was started with.
const WRAPPER = path.join(import.meta.dirname, '..', '..', 'functions', 'kit', 'heap-wrapper.sh');
const PRINT =
  'process.stdout.write(JSON.stringify({ execArgv: process.execArgv, argv: process.argv.slice(1) }))';

function wrapped(semi: string | undefined, args: string[], grow?: string) {
  const env = { ...process.env };
  delete env.V8_SEMI_SPACE_MB;
  delete env.V8_HEAP_GROWING_PERCENT;
  if (semi !== undefined) env.V8_SEMI_SPACE_MB = semi;
  if (grow !== undefined) env.V8_HEAP_GROWING_PERCENT = grow;
  const out = spawnSync(WRAPPER, [process.execPath, ...args], { env, encoding: 'utf8' });
  return {
    status: out.status,
    stderr: out.stderr,
    node: out.status === 0 ? (JSON.parse(out.stdout) as { execArgv: string[]; argv: string[] }) : undefined,
  };
}

describe('the heap exec wrapper', () => {
  it("replaces the bootstrap's semi-space and passes every other argument on, in order", () => {
    const out = wrapped('2', [
      '--max-semi-space-size=9',
      '--max-old-space-size=173',
      '-e',
      PRINT,
      'an argument with spaces',
      '--max-old-space-size=1',
    ]);
    expect(out.status).toBe(0);
    expect(out.node?.execArgv).toEqual(['--max-semi-space-size=2', '--max-old-space-size=173', '-e', PRINT]);
    expect(out.node?.argv).toEqual(['an argument with spaces', '--max-old-space-size=1']);
  });

  it('adds the flag after the interpreter when the bootstrap passes none', () => {
    expect(wrapped('3', ['-e', PRINT]).node?.execArgv).toEqual(['--max-semi-space-size=3', '-e', PRINT]);
  });

  it('sets the heap growth after the interpreter, or in place of one passed, beside the semi-space or alone', () => {
    expect(wrapped('2', ['--max-semi-space-size=9', '-e', PRINT], '200').node?.execArgv).toEqual([
      '--heap-growing-percent=200',
      '--max-semi-space-size=2',
      '-e',
      PRINT,
    ]);
    expect(wrapped(undefined, ['--max-semi-space-size=9', '-e', PRINT], '150').node?.execArgv).toEqual([
      '--heap-growing-percent=150',
      '--max-semi-space-size=9',
      '-e',
      PRINT,
    ]);
    expect(
      wrapped(undefined, ['--heap-growing-percent=50', '--max-semi-space-size=9', '-e', PRINT], '150').node
        ?.execArgv,
    ).toEqual(['--heap-growing-percent=150', '--max-semi-space-size=9', '-e', PRINT]);
    // Unset, a growth the bootstrap passed is left alone.
    expect(wrapped('2', ['--heap-growing-percent=50', '-e', PRINT]).node?.execArgv).toEqual([
      '--max-semi-space-size=2',
      '--heap-growing-percent=50',
      '-e',
      PRINT,
    ]);
  });

  it('changes nothing when no size is set', () => {
    expect(wrapped(undefined, ['--max-semi-space-size=9', '-e', PRINT]).node?.execArgv).toEqual([
      '--max-semi-space-size=9',
      '-e',
      PRINT,
    ]);
    expect(wrapped('', ['--max-semi-space-size=9', '-e', PRINT]).node?.execArgv[0]).toBe(
      '--max-semi-space-size=9',
    );
  });

  it.each(['0', '02', '1.5', '-1', 'x', '2 --inspect'])(
    'refuses %j with the reason, and starts nothing',
    (semi) => {
      const out = wrapped(semi, ['-e', PRINT]);
      expect(out.status).toBe(64);
      expect(out.node).toBeUndefined();
      expect(out.stderr).toContain(`V8_SEMI_SPACE_MB must be a positive whole number of MB, not '${semi}'`);
    },
  );

  it.each(['0', '0200', '1.5', '-1', 'x', '200 --inspect'])(
    'refuses a heap growth of %j with the reason, and starts nothing',
    (grow) => {
      const out = wrapped('2', ['-e', PRINT], grow);
      expect(out.status).toBe(64);
      expect(out.node).toBeUndefined();
      expect(out.stderr).toContain(`V8_HEAP_GROWING_PERCENT must be a positive whole number, not '${grow}'`);
    },
  );
});
