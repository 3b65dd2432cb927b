import type { SQSRecord } from 'aws-lambda';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { logger, recordLogger } from '../../functions/kit/powertools';

const record = { messageId: 'm-1' } as SQSRecord;

/** The JSON lines the shared logger's children write while `fn` runs (Powertools writes to stdout/stderr). */
function linesOf(fn: () => void): Array<Record<string, unknown>> {
  const lines: string[] = [];
  const capture = (chunk: unknown) => {
    lines.push(...String(chunk).split('\n').filter(Boolean));
    return true;
  };
  const spies = [
    vi.spyOn(process.stdout, 'write').mockImplementation(capture),
    vi.spyOn(process.stderr, 'write').mockImplementation(capture),
  ];
  try {
    fn();
  } finally {
    for (const s of spies) s.mockRestore();
  }
  return lines.map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('recordLogger', () => {
  afterEach(() => {
    logger.setLogLevel('INFO');
    vi.restoreAllMocks();
  });

  it("writes the record's messageId and keys on each line at an enabled level", () => {
    logger.setLogLevel('INFO');
    const log = recordLogger(record, { crawlId: 'c-1' });
    const lines = linesOf(() => {
      log.info('one', { n: 1 });
      log.warn('two');
      log.error('three', new Error('boom'));
    });
    expect(lines.map((l) => [l.level, l.message, l.messageId, l.crawlId])).toEqual([
      ['INFO', 'one', 'm-1', 'c-1'],
      ['WARN', 'two', 'm-1', 'c-1'],
      ['ERROR', 'three', 'm-1', 'c-1'],
    ]);
    expect(lines[0]?.n).toBe(1);
  });

  it('builds no child logger, and writes nothing, for lines below the level', () => {
    logger.setLogLevel('WARN');
    const createChild = vi.spyOn(logger, 'createChild');
    const log = recordLogger(record, { crawlId: 'c-1' });
    const lines = linesOf(() => {
      log.debug('quiet');
      log.info('quiet too');
    });
    expect(lines).toEqual([]);
    expect(createChild).not.toHaveBeenCalled();
    // The first enabled line builds it, once.
    linesOf(() => {
      log.warn('loud');
      log.error('louder');
    });
    expect(createChild).toHaveBeenCalledTimes(1);
  });

  it('keeps the keys of records logged side by side apart', () => {
    const a = recordLogger({ messageId: 'a' } as SQSRecord, { crawlId: 'ca' });
    const b = recordLogger({ messageId: 'b' } as SQSRecord, { crawlId: 'cb' });
    const lines = linesOf(() => {
      a.info('x');
      b.info('y');
      a.info('z');
    });
    expect(lines.map((l) => `${l.messageId}/${l.crawlId}/${l.message}`)).toEqual([
      'a/ca/x',
      'b/cb/y',
      'a/ca/z',
    ]);
  });
});
