#!/usr/bin/env node
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks, ServerlessChecks } from 'cdk-nag';
import { loadStageConfig } from '../lib/config';
import { CrawlerStack } from '../lib/stacks/crawler-stack';
import { GiftStack } from '../lib/stacks/gift-stack';

const app = new App();
const config = loadStageConfig({
  stage: app.node.tryGetContext('stage'),
  alarmEmail: app.node.tryGetContext('alarmEmail'),
  testAllowTargets: app.node.tryGetContext('testAllowTargets'),
});
const env = { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION };

// One stack per pipeline, named <Pipeline>-<stage>. `npm run deploy` deploys them all; name one to deploy
// only it (`npx cdk deploy Gift-dev -c stage=dev`). `npm start -- --stack <name>` runs one on your machine.
new CrawlerStack(app, `Crawler-${config.stage}`, {
  config,
  description: `Serverless crawler pipeline (${config.stage}): SQS FIFO frontier, Lambda consumers, DynamoDB, S3.`,
  env,
  tags: { project: 'sqs-crawler-pipeline', pipeline: 'crawler', stage: config.stage },
});
new GiftStack(app, `Gift-${config.stage}`, {
  config,
  description: `First-come survey gift event (${config.stage}): FIFO entries per user, atomic stock, one coupon per user.`,
  env,
  tags: { project: 'sqs-crawler-pipeline', pipeline: 'gift', stage: config.stage },
});

Validations.of(app).addPlugins(new AwsSolutionsChecks(app), new ServerlessChecks(app));
