import { defineConfig } from 'vitest/config';

// The adversarial suite runs through test/adversarial/isolate.mjs, inside a network namespace.
export default defineConfig({
  test: {
    include: ['test/adversarial/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    fileParallelism: false,
  },
});
