// Mutation testing of the pure modules: `npm run mutation` (full) or `npm run mutation -- --mutate <file>`.
// Stryker 10 needs Node >= 22; test/mutation/run.mjs provides it on a Node 20 machine.
/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'vitest',
  vitest: { configFile: 'test/mutation/vitest.config.ts' },
  plugins: ['@stryker-mutator/vitest-runner'],
  mutate: [
    'functions/crawl/url.ts',
    'functions/crawler/ssrf.ts',
    'functions/crawler/robots.ts',
    'functions/crawler/policy.ts',
    'functions/parser/extract.ts',
    'functions/parser/charset.ts',
    'functions/kit/batch.ts',
    'functions/kit/send-batcher.ts',
    'functions/kit/statement-batcher.ts',
    'functions/crawl/schemas.ts',
  ],
  coverageAnalysis: 'perTest',
  concurrency: 2,
  timeoutMS: 20_000,
  reporters: ['clear-text', 'progress', 'json'],
  jsonReporter: { fileName: 'test/mutation/report.json' },
  tempDirName: '.stryker-tmp',
  thresholds: { high: 90, low: 85, break: 85 },
};
