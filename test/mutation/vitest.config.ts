import { defineConfig } from 'vitest/config';

// The unit tests that guard the pure modules Stryker mutates; no emulators, so each mutant runs in seconds.
export default defineConfig({
  test: {
    include: ['test/unit/**/*.test.ts'],
    testTimeout: 30_000,
    pool: 'forks',
  },
});
