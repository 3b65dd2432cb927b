import { KIT_ENV } from '../kit/env-names';

/**
 * Names of the environment variables the crawler stack sets and its functions read.
 * One list, imported by both sides, so a rename cannot leave them disagreeing.
 */
export const ENV = {
  ...KIT_ENV,
  frontierQueueUrl: 'FRONTIER_QUEUE_URL',
  parseQueueUrl: 'PARSE_QUEUE_URL',
  urlsTable: 'URLS_TABLE',
  crawlsTable: 'CRAWLS_TABLE',
  bodiesBucket: 'BODIES_BUCKET',
  linksQueueUrl: 'LINKS_QUEUE_URL',
  ranksTable: 'RANKS_TABLE',
  edgesBucket: 'EDGES_BUCKET',
  /** Parse messages whose compressed body is larger (bytes) send it through S3 instead. */
  inlineBodyMaxBytes: 'INLINE_BODY_MAX_BYTES',
  userAgent: 'CRAWLER_USER_AGENT',
  maxBodyBytes: 'MAX_BODY_BYTES',
  fetchTimeoutMs: 'FETCH_TIMEOUT_MS',
  /** Fetches of one host side by side, for hosts whose robots.txt sets no Crawl-delay. */
  maxFetchesPerHost: 'MAX_FETCHES_PER_HOST',
  recordTtlSeconds: 'RECORD_TTL_SECONDS',
  /** Test-only: comma-separated loopback ports the SSRF guard lets through. Never set by the stack. */
  fetchAllowLoopbackPorts: 'CRAWLER_TEST_ALLOW_LOOPBACK_PORTS',
  /**
   * Test-only: comma-separated ip:port pairs (private addresses) the SSRF guard lets through. Set by the
   * stack only from `-c testAllowTargets=…`, which the prod stage refuses.
   */
  fetchAllowTargets: 'CRAWLER_TEST_ALLOW_TARGETS',
  /** Test-only: comma-separated name servers (ip:port) for the crawler's resolver. Never set by the stack. */
  fetchDnsServers: 'CRAWLER_TEST_DNS_SERVERS',
} as const;

/** Key prefix of claim-check bodies in the bodies bucket. */
export const BODY_PREFIX = 'bodies/';
