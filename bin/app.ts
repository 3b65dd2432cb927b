#!/usr/bin/env node
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks, ServerlessChecks } from 'cdk-nag';
import { loadStageConfig } from '../lib/config';
import { CrawlerStack } from '../lib/stacks/crawler-stack';

const app = new App();
const config = loadStageConfig({
  stage: app.node.tryGetContext('stage'),
  alarmEmail: app.node.tryGetContext('alarmEmail'),
  testAllowTargets: app.node.tryGetContext('testAllowTargets'),
});

new CrawlerStack(app, `Crawler-${config.stage}`, {
  config,
  description: `Serverless crawler pipeline (${config.stage}): SQS FIFO frontier, Lambda consumers, DynamoDB, S3.`,
  env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
  tags: { project: 'sqs-crawler-pipeline', stage: config.stage },
});

Validations.of(app).addPlugins(new AwsSolutionsChecks(app), new ServerlessChecks(app));
