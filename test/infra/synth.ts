import { App, Validations } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks, ServerlessChecks } from 'cdk-nag';
import { loadStageConfig } from '../../lib/config';
import { CrawlerStack } from '../../lib/stacks/crawler-stack';

/** Build the crawler stack for a stage, with the same cdk-nag packs as bin/app.ts. */
export function synthCrawlerStack(
  stage: 'dev' | 'prod' = 'dev',
  alarmEmail?: string,
  context: { testAllowTargets?: string } = {},
) {
  const app = new App();
  const config = loadStageConfig({ stage, alarmEmail, ...context });
  const stack = new CrawlerStack(app, `Crawler-${stage}`, { config });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app), new ServerlessChecks(app));
  return { app, stack, template: Template.fromStack(stack) };
}
