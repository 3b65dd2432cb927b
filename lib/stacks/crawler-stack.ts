import path from 'node:path';
import { Duration, type StackProps, Validations } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import { BODY_PREFIX, ENV } from '../../functions/crawl/env-names';
import { METRIC, METRICS_NAMESPACE } from '../../functions/crawl/metrics';
import { MIN_RECEIVES } from '../../functions/crawler/failures';
import { type StageConfig, stageDefaults } from '../config';
import { PipelineStack } from '../constructs/pipeline-stack';
import { PipelineStage } from '../constructs/pipeline-stage';

export interface CrawlerStackProps extends StackProps {
  readonly config: StageConfig;
}

const functionsDir = path.join(import.meta.dirname, '..', '..', 'functions');

/** Collect → queue → parse → store, on the pipeline kit. No business logic lives here. */
export class CrawlerStack extends PipelineStack {
  public readonly frontier: PipelineStage;
  public readonly parseQueue: PipelineStage;

  constructor(scope: Construct, id: string, props: CrawlerStackProps) {
    const { config } = props;
    super(scope, id, { ...props, ...stageDefaults(config), metricsNamespace: METRICS_NAMESPACE });

    const pages = this.addTable('PagesTable', { partitionKey: 'crawlId', sortKey: 'url' });
    const urls = this.addTable('UrlsTable', { partitionKey: 'crawlId', sortKey: 'url', timeToLive: true });
    const crawls = this.addTable('CrawlsTable', { partitionKey: 'crawlId', timeToLive: true });
    const bodies = this.addBucket('BodiesBucket', {
      lifecycleRules: [{ prefix: BODY_PREFIX, expiration: config.bodyExpiration }],
    });
    Validations.of(bodies).acknowledge({
      id: 'AwsSolutions-S1',
      reason: `Bodies are transient claim checks that expire after ${config.bodyExpiration.toDays()} days and are read only by the parser role; CloudTrail data events cover audits when needed.`,
    });

    const commonEnv = {
      [ENV.userAgent]: config.crawl.userAgent,
      [ENV.maxBodyBytes]: String(config.crawl.maxBodyBytes),
      [ENV.fetchTimeoutMs]: String(config.crawl.fetchTimeoutMs),
      [ENV.recordTtlSeconds]: String(config.recordTtl.toSeconds()),
    };
    // Frontier: FIFO, group = URL host (partition key), dedup id = hash of the canonical URL.
    this.frontier = new PipelineStage(this, 'Frontier', {
      fifo: true,
      highThroughputFifo: true,
      // Transient fetch failures retry on all but the last two receives (functions/crawler/failures.ts).
      maxReceiveCount: 5,
      entry: path.join(functionsDir, 'crawler', 'handler.ts'),
      serviceName: 'crawler',
      timeout: Duration.seconds(60),
      // The crawler mostly waits on the network, and Lambda bills the wait by memory: 256 MB halves that
      // cost against the 512 MB default. The parser is CPU-bound, so it keeps the default.
      memorySize: 256,
      maxConcurrency: config.crawlerMaxConcurrency,
      environment: {
        ...commonEnv,
        ...(config.testAllowTargets ? { [ENV.fetchAllowTargets]: config.testAllowTargets } : {}),
      },
    });
    if (this.frontier.maxReceiveCount < MIN_RECEIVES)
      throw new Error(
        `${this.frontier.node.path}: maxReceiveCount (${this.frontier.maxReceiveCount}) must be at least ${MIN_RECEIVES} for the crawler's fetch retries`,
      );
    // The parse queue is standard, so its pollers may wait to fill a batch: fuller batches mean fewer
    // receives, deletes and invocations per page, and one link lookup for ten pages.
    this.parseQueue = new PipelineStage(this, 'ParseQueue', {
      entry: path.join(functionsDir, 'parser', 'handler.ts'),
      serviceName: 'parser',
      timeout: Duration.seconds(30),
      maxBatchingWindow: Duration.seconds(1),
      maxConcurrency: config.parserMaxConcurrency,
      environment: commonEnv,
    });

    this.frontier
      .bindQueue(this.parseQueue.queue, ENV.parseQueueUrl)
      .bindTable(crawls, 'r', ENV.crawlsTable)
      .bindTable(urls, 'rw', ENV.urlsTable)
      .bindBucket(bodies, 'rw', ENV.bodiesBucket, BODY_PREFIX);
    this.parseQueue
      .bindQueue(this.frontier.queue, ENV.frontierQueueUrl)
      .bindTable(pages, 'rw', ENV.pagesTable)
      .bindTable(urls, 'rw', ENV.urlsTable)
      .bindTable(crawls, 'rw', ENV.crawlsTable)
      .bindBucket(bodies, 'r', ENV.bodiesBucket, BODY_PREFIX);

    this.addMetricGraph('Pages', [
      { name: METRIC.pagesFetched, service: 'crawler' },
      { name: METRIC.pagesStored, service: 'parser' },
      { name: METRIC.duplicatesSuppressed, service: 'parser' },
      { name: METRIC.blocked, service: 'crawler' },
    ]);
    this.addMetricGraph('Links enqueued / refused by the page budget', [
      { name: METRIC.linksEnqueued, service: 'parser' },
      { name: METRIC.linksOverBudget, service: 'parser' },
    ]);
  }
}
