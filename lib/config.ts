import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';

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
}

const sharedCrawl: CrawlDefaults = {
  maxPages: 1000,
  maxDepth: 5,
  maxBodyBytes: 2 * 1024 * 1024,
  fetchTimeoutMs: 10_000,
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

/**
 * Resolve the stage config from the `stage` context value.
 * @param alarmEmail optional override from `-c alarmEmail=...`
 */
export function loadStageConfig(stage: unknown, alarmEmail?: unknown): StageConfig {
  const name = typeof stage === 'string' && stage.length > 0 ? stage : 'dev';
  const config = stages[name];
  if (!config) {
    throw new Error(
      `Unknown stage "${name}". Pass one of ${Object.keys(stages).join(', ')} with -c stage=<name>, or add it to lib/config.ts.`,
    );
  }
  if (alarmEmail === undefined || alarmEmail === '') return config;
  if (typeof alarmEmail !== 'string' || !/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(alarmEmail)) {
    throw new Error(
      `alarmEmail "${String(alarmEmail)}" is not an e-mail address. Pass -c alarmEmail=ops@example.com.`,
    );
  }
  return { ...config, alarmEmail };
}
