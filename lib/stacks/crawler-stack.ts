import path from 'node:path';
import { Duration, type StackProps, Validations } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import { BODY_PREFIX, ENV } from '../../functions/crawl/env-names';
import { EDGE_LOG_PREFIX } from '../../functions/crawl/link-graph';
import { METRIC, METRICS_NAMESPACE } from '../../functions/crawl/metrics';
import { MIN_RECEIVES } from '../../functions/crawler/failures';
import { type StageConfig, stageDefaults } from '../config';
import { ATHENA_RESULTS_EXPIRATION, AthenaJsonTable } from '../constructs/athena-table';
import { PipelineStack } from '../constructs/pipeline-stack';
import { PipelineStage } from '../constructs/pipeline-stage';

export interface CrawlerStackProps extends StackProps {
  readonly config: StageConfig;
}

/** Athena's result files, in the edges bucket beside the log. */
const ATHENA_RESULTS_PREFIX = 'athena-results/';

const functionsDir = path.join(import.meta.dirname, '..', '..', 'functions');

/** Collect → queue → parse → store, on the pipeline kit. No business logic lives here. */
export class CrawlerStack extends PipelineStack {
  public readonly frontier: PipelineStage;
  public readonly parseQueue: PipelineStage;
  public readonly links: PipelineStage;
  public readonly edges: AthenaJsonTable;

  constructor(scope: Construct, id: string, props: CrawlerStackProps) {
    const { config } = props;
    super(scope, id, { ...props, ...stageDefaults(config), metricsNamespace: METRICS_NAMESPACE });

    const urls = this.addTable('UrlsTable', { partitionKey: 'crawlId', sortKey: 'url', timeToLive: true });
    const crawls = this.addTable('CrawlsTable', { partitionKey: 'crawlId', timeToLive: true });
    const bodies = this.addBucket('BodiesBucket', {
      lifecycleRules: [{ prefix: BODY_PREFIX, expiration: config.bodyExpiration }],
    });
    Validations.of(bodies).acknowledge({
      id: 'AwsSolutions-S1',
      reason: `Bodies are transient claim checks that expire after ${config.bodyExpiration.toDays()} days and are read only by the parser role; CloudTrail data events cover audits when needed.`,
    });

    // The ranking: online counts per linked URL, and the edge log the exact ranking reads with SQL.
    const ranks = this.addTable('RanksTable', { partitionKey: 'crawlId', sortKey: 'url', timeToLive: true });
    const edgeLog = this.addBucket('EdgesBucket', {
      lifecycleRules: [{ prefix: ATHENA_RESULTS_PREFIX, expiration: ATHENA_RESULTS_EXPIRATION }],
    });
    Validations.of(edgeLog).acknowledge({
      id: 'AwsSolutions-S1',
      reason:
        'The edge log is written only by the ranker role and read by the query policy; CloudTrail data events cover audits when needed.',
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
      // The crawler mostly waits on the network, and Lambda bills the wait by memory. Its peak is about
      // 110-125 MB in the bench's crawl and 134 MB at the largest pages (0.7 of 192; the bench's limit is 0.9),
      // one Brotli encoder at a time (functions/crawl/body.ts), so 192 MB bills the wait 0.375 of the 512 MB
      // default.
      memorySize: 192,
      // Lambda's young generation at 192 MB (two 9 MB semi-spaces) kept V8 marking the crawler's old
      // generation almost without pause, since the room under its limit was smaller than the young
      // generation. With 2 MB semi-spaces the crawler took 3.6 and 3.2 CPU-ms a page in the bench's crawl
      // against 5.2 and 3.9 (two pairs of runs), and peaked about 20 MB lower (README › Benchmarks).
      semiSpaceMb: 2,
      // V8 then still marked the old generation 5 or 6 times per environment in a crawl, each time soon
      // after the last, since its own growth factor left little room over the 18-20 MB that stay live.
      // Allowed to grow to three times that, each environment marked once: GC 1.0-1.1 s → 0.3-0.6 s per
      // environment over a crawl (--trace-gc-nvp), for about 5 MB more at its peak.
      heapGrowingPercent: 200,
      maxConcurrency: config.crawlerMaxConcurrency,
      environment: {
        ...commonEnv,
        [ENV.maxFetchesPerHost]: String(config.crawl.maxFetchesPerHost),
        ...(config.testAllowTargets ? { [ENV.fetchAllowTargets]: config.testAllowTargets } : {}),
      },
    });
    if (this.frontier.maxReceiveCount < MIN_RECEIVES)
      throw new Error(
        `${this.frontier.node.path}: maxReceiveCount (${this.frontier.maxReceiveCount}) must be at least ${MIN_RECEIVES} for the crawler's fetch retries`,
      );
    // No batching window on the parse queue: the crawler sends a host's parse messages in one batch, so they
    // arrive together anyway. Measured with `npm run bench -- --only crawl,chain`: a 1 s window cost the same
    // per page and brought the sandbox from 46.7 down to 28.1 pages/s.
    this.parseQueue = new PipelineStage(this, 'ParseQueue', {
      entry: path.join(functionsDir, 'parser', 'handler.ts'),
      serviceName: 'parser',
      timeout: Duration.seconds(30),
      // Below 1,769 MB (one vCPU) a function's CPU work costs the same at any memory, as less memory runs it
      // slower; its waits on DynamoDB and SQS cost by memory. The parser peaks at about 145 MB in the bench's
      // crawl and 160-171 MB at its largest pages (up to 0.77 of 224), so 224 MB bills the waits 0.44 of the 512 MB
      // default.
      memorySize: 224,
      // The same heap growth as the crawler's: each parser environment marked its old generation 12 or 13
      // times in a crawl, and once when it may grow to three times what stays live. GC
      // 1.4-1.5 s → 0.4-0.5 s per environment over about 1,070 pages (--trace-gc-nvp). Its young
      // generation stays Lambda's: a 4 MB one promoted more, and marked 18 times.
      heapGrowingPercent: 200,
      maxConcurrency: config.parserMaxConcurrency,
      environment: commonEnv,
    });

    // Page links: standard, and drained in large batches, so one write per linked URL and one edge log
    // object serve many pages. The window is how stale the online ranking may be.
    this.links = new PipelineStage(this, 'Links', {
      entry: path.join(functionsDir, 'ranker', 'handler.ts'),
      serviceName: 'ranker',
      timeout: Duration.seconds(60),
      batchSize: 1000,
      maxBatchingWindow: Duration.seconds(5),
      maxConcurrency: 2,
      environment: { [ENV.recordTtlSeconds]: String(config.recordTtl.toSeconds()) },
    });
    this.edges = new AthenaJsonTable(this, 'Ranking', {
      bucket: edgeLog,
      prefix: EDGE_LOG_PREFIX,
      tableName: 'edges',
      columns: { src: 'string', dst: 'string' },
      partitionKey: 'crawl_id',
      resultsPrefix: ATHENA_RESULTS_PREFIX,
    });
    this.output('RankingDatabase', this.edges.databaseName);
    this.output('RankingWorkGroup', this.edges.workGroupName);
    this.output('RankingQueryPolicyArn', this.edges.queryPolicy.managedPolicyArn);

    this.frontier
      .bindQueue(this.parseQueue.queue, ENV.parseQueueUrl)
      // A URL whose fetch timed out is sent again to the back of its host's group (requeueFrontier).
      .bindQueue(this.frontier.queue, ENV.frontierQueueUrl)
      .bindTable(crawls, 'r', ENV.crawlsTable)
      // The crawler completes a host's URLs in one BatchExecuteStatement (UrlRecordPersistenceLayer).
      .bindTable(urls, 'rw', ENV.urlsTable, { partiql: ['update'] })
      .bindBucket(bodies, 'rw', ENV.bodiesBucket, BODY_PREFIX);
    this.parseQueue
      .bindQueue(this.frontier.queue, ENV.frontierQueueUrl)
      // The parser stores a batch's new pages on their URL records (storePage) and claims their new links
      // (discoverLinks) with one BatchExecuteStatement each.
      .bindTable(urls, 'rw', ENV.urlsTable, { partiql: ['insert', 'update'] })
      .bindTable(crawls, 'rw', ENV.crawlsTable)
      .bindBucket(bodies, 'r', ENV.bodiesBucket, BODY_PREFIX)
      .bindQueue(this.links.queue, ENV.linksQueueUrl);
    this.links
      .bindTable(ranks, 'rw', ENV.ranksTable)
      .bindBucket(edgeLog, 'w', ENV.edgesBucket, EDGE_LOG_PREFIX);

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
