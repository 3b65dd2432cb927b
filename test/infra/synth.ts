import { readFileSync } from 'node:fs';
import path from 'node:path';
import { App, Validations } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { BUNDLING_STACKS } from 'aws-cdk-lib/cx-api';
import { AwsSolutionsChecks, ServerlessChecks } from 'cdk-nag';
import { loadStageConfig } from '../../lib/config';
import { CrawlerStack } from '../../lib/stacks/crawler-stack';

const CDK_JSON_CONTEXT = (
  JSON.parse(readFileSync(path.join(import.meta.dirname, '..', '..', 'cdk.json'), 'utf8')) as {
    context: Record<string, unknown>;
  }
).context;

/**
 * An app for template tests: cdk.json's context (the feature flags) too, so the tests see the templates
 * `cdk synth` makes. No stack is bundled: these tests read templates, not bundles (npm test's `cdk synth`
 * bundles every function, and the sandbox suites run those bundles), and each synth here bundled every
 * function again with esbuild.
 */
export function templateApp(): App {
  return new App({ context: { ...CDK_JSON_CONTEXT, [BUNDLING_STACKS]: [] } });
}

/** Build the crawler stack for a stage, with the same cdk-nag packs as bin/app.ts. */
export function synthCrawlerStack(
  stage: 'dev' | 'prod' = 'dev',
  alarmEmail?: string,
  context: { testAllowTargets?: string } = {},
) {
  const app = templateApp();
  const config = loadStageConfig({ stage, alarmEmail, ...context });
  const stack = new CrawlerStack(app, `Crawler-${stage}`, { config });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app), new ServerlessChecks(app));
  return { app, stack, template: Template.fromStack(stack) };
}
