import { describe, expect, it } from 'vitest';
import { type InvocationStats, peakMemory } from '../../sandbox/runner';

const invocation = (
  functionId: string,
  memoryMb: number,
  peakRssMb: number | undefined,
  outcome: InvocationStats['outcome'] = 'ok',
): InvocationStats => ({
  functionId,
  records: 1,
  groups: 1,
  groupSizes: { '': 1 },
  failed: 0,
  memoryMb,
  container: 0,
  outcome,
  durationMs: 10,
  ...(peakRssMb === undefined ? {} : { peakRssMb }),
});

describe('peakMemory', () => {
  it("keeps each function's highest peak, by function name, with all its whole-invocation failures", () => {
    const peaks = peakMemory([
      invocation('ParserFunctionAAAAAAAA', 512, 140.4),
      invocation('CrawlerFunction12345678', 256, 150.2),
      invocation('CrawlerFunction12345678', 256, 201.6, 'error'),
      invocation('CrawlerFunction12345678', 256, 170, 'partial'),
      invocation('CrawlerFunction12345678', 256, undefined, 'timeout'),
    ]);
    expect([...peaks.byFunction.entries()]).toEqual([
      // The timeout reported no peak (its environment was torn down), and still counts as a failure.
      ['Crawler', { peakMb: 201.6, memoryMb: 256, failed: 2 }],
      ['Parser', { peakMb: 140.4, memoryMb: 512, failed: 0 }],
    ]);
    expect(peaks.worstShare).toBeCloseTo(201.6 / 256);
    expect(peaks.line).toBe('Crawler 202 of 256 MB (2 failed invocations), Parser 140 of 512 MB');
  });

  it('says nothing where no environment measured its memory (worker threads) and none failed', () => {
    const peaks = peakMemory([invocation('CrawlerFunction12345678', 256, undefined)]);
    expect(peaks.byFunction.size).toBe(0);
    expect(peaks.worstShare).toBe(0);
    expect(peaks.line).toBe('');
  });

  it('reports a function whose environments failed before measuring any peak', () => {
    const peaks = peakMemory([invocation('CrawlerFunction12345678', 256, undefined, 'error')]);
    expect(peaks.line).toBe('Crawler 0 of 256 MB (1 failed invocations)');
  });
});
