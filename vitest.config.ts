import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 120_000,
    // Integration suites share one sandbox per file; files run in parallel on separate emulators.
    pool: 'forks',
  },
});
