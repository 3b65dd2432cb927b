import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // test/adversarial runs on its own, inside a network namespace (npm run test:adversarial).
    include: ['test/unit/**/*.test.ts', 'test/infra/**/*.test.ts', 'test/integration/**/*.test.ts'],
    // Integration tests wait on conditions with their own limits (up to 60 s per effect, more for the chaos
    // and portable suites): the test's limit sits above them, so a loaded machine fails, if at all, on the
    // condition's own message and not on a bare timeout. (A 30 s limit failed the CLI test under load.)
    testTimeout: 120_000,
    // The AWS SDK's Node 20 notice, once per test process (see tooling/quiet-sdk.ts).
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    hookTimeout: 120_000,
    // Integration suites share one sandbox per file; files run in parallel on separate emulators.
    pool: 'forks',
    // Vitest's default is one worker per core but one, so a 2-core machine ran the files one at a time. The
    // integration files mostly wait (on queues, retry delays, a JVM starting), so several side by side cut
    // the suite on 2 cores: three took it from about 4 minutes to 2.3, and as the suite grew to 4.1, four
    // took it to 3.3 (4.4 with stress-ng holding one core busy), all green; each file keeps its own
    // emulators.
    maxWorkers: 4,
  },
});
