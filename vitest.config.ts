import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // test/adversarial runs on its own, inside a network namespace (npm run test:adversarial).
    include: ['test/unit/**/*.test.ts', 'test/infra/**/*.test.ts', 'test/integration/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 120_000,
    // Integration suites share one sandbox per file; files run in parallel on separate emulators.
    pool: 'forks',
  },
});
