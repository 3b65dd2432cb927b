import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { parseAllowedTargets } from '../functions/crawler/ssrf';

/** Crawl limits applied when a crawl job does not set its own. */
export interface CrawlDefaults {
  /** URLs admitted to a crawl's frontier (so fetches made) before the budget counter refuses more. */
  readonly maxPages: number;
  /** Link hops from a seed. Seeds are depth 0. */
  readonly maxDepth: number;
  /** Response bodies above this many decoded bytes are abandoned while streaming. */
  readonly maxBodyBytes: number;
  /** Connect + headers budget for one fetch. */
  readonly fetchTimeoutMs: number;
  /**
   * Fetches of one host in flight at once, for hosts whose robots.txt sets no Crawl-delay. A host that sets
   * one is fetched one page at a time, with that delay between the end of one fetch and the next.
   */
  readonly maxFetchesPerHost: number;
  /** User-Agent sent on every request and matched against robots.txt groups. */
  readonly userAgent: string;
}

/** Everything that differs between stages. Chosen with `-c stage=<name>`. */
export interface StageConfig {
  readonly stage: string;
  /** dev destroys data with the stack; prod keeps it. */
  readonly removalPolicy: RemovalPolicy;
  /** Subscribed to the alarm topic when set. */
  readonly alarmEmail?: string;
  readonly logRetention: RetentionDays;
  readonly logLevel: 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';
  /** Event source mapping MaximumConcurrency of the crawler (collect) function. */
  readonly crawlerMaxConcurrency: number;
  /** Event source mapping MaximumConcurrency of the parser (parse + store) function. */
  readonly parserMaxConcurrency: number;
  /** Alarm when the oldest message in a source queue is older than this. */
  readonly oldestMessageAlarmAge: Duration;
  /** How long stored page bodies (claim checks) stay in S3. */
  readonly bodyExpiration: Duration;
  /** How long URL first-seen records and idempotency records are kept. */
  readonly recordTtl: Duration;
  readonly crawl: CrawlDefaults;
  /**
   * Test-only: private ip:port pairs the crawler may fetch (the LocalStack fixture site). From
   * `-c testAllowTargets=…`; refused for prod.
   */
  readonly testAllowTargets?: string;
}

const sharedCrawl: CrawlDefaults = {
  maxPages: 1000,
  maxDepth: 5,
  maxBodyBytes: 2 * 1024 * 1024,
  fetchTimeoutMs: 10_000,
  maxFetchesPerHost: 4,
  userAgent: 'sqs-crawler-pipeline/0.1 (+https://github.com/your-org/sqs-crawler-pipeline)',
};

export const stages: Record<string, StageConfig> = {
  dev: {
    stage: 'dev',
    removalPolicy: RemovalPolicy.DESTROY,
    logRetention: RetentionDays.ONE_WEEK,
    logLevel: 'DEBUG',
    crawlerMaxConcurrency: 2,
    parserMaxConcurrency: 2,
    oldestMessageAlarmAge: Duration.minutes(15),
    bodyExpiration: Duration.days(3),
    recordTtl: Duration.days(7),
    crawl: sharedCrawl,
  },
  prod: {
    stage: 'prod',
    removalPolicy: RemovalPolicy.RETAIN,
    logRetention: RetentionDays.ONE_MONTH,
    logLevel: 'INFO',
    crawlerMaxConcurrency: 20,
    parserMaxConcurrency: 10,
    oldestMessageAlarmAge: Duration.minutes(30),
    bodyExpiration: Duration.days(7),
    recordTtl: Duration.days(30),
    crawl: { ...sharedCrawl, maxPages: 100_000, maxDepth: 10 },
  },
};

/** The CDK context values a stage config reads (`-c name=value`). */
export interface StageContext {
  readonly stage?: unknown;
  readonly alarmEmail?: unknown;
  readonly testAllowTargets?: unknown;
}

/** Stages that may never carry a test-only setting. */
const PRODUCTION_STAGES = new Set(['prod']);

/** Resolve the stage config from the `stage` context value and its optional overrides. */
export function loadStageConfig(context: StageContext = {}): StageConfig {
  const { stage, alarmEmail, testAllowTargets } = context;
  const name = typeof stage === 'string' && stage.length > 0 ? stage : 'dev';
  const base = stages[name];
  if (!base) {
    throw new Error(
      `Unknown stage "${name}". Pass one of ${Object.keys(stages).join(', ')} with -c stage=<name>, or add it to lib/config.ts.`,
    );
  }
  let config: StageConfig = base;
  if (alarmEmail !== undefined && alarmEmail !== '') {
    if (typeof alarmEmail !== 'string' || !/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(alarmEmail)) {
      throw new Error(
        `alarmEmail "${String(alarmEmail)}" is not an e-mail address. Pass -c alarmEmail=ops@example.com.`,
      );
    }
    config = { ...config, alarmEmail };
  }
  if (testAllowTargets !== undefined && testAllowTargets !== '') {
    if (PRODUCTION_STAGES.has(name))
      throw new Error(
        `-c testAllowTargets is test-only (it lets the crawler reach private addresses) and the ${name} stage refuses it. Deploy ${name} without it.`,
      );
    // Parsed here so a malformed list fails the synth, not the first fetch.
    parseAllowedTargets(String(testAllowTargets));
    config = { ...config, testAllowTargets: String(testAllowTargets) };
  }
  return config;
}

/**
 * The stage settings every pipeline stack takes from its stage: pass them to PipelineStack next to the
 * stack's own metrics namespace (`super(scope, id, { ...props, ...stageDefaults(config), metricsNamespace })`).
 */
export function stageDefaults(config: StageConfig) {
  return {
    alarmEmail: config.alarmEmail,
    removalPolicy: config.removalPolicy,
    logRetention: config.logRetention,
    logLevel: config.logLevel,
    oldestMessageAlarmAge: config.oldestMessageAlarmAge,
    recordTtl: config.recordTtl,
  };
}
