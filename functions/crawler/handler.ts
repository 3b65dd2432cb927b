import { IdempotencyConfig, makeIdempotent } from '@aws-lambda-powertools/idempotency';
import { LogLevelThreshold } from '@aws-lambda-powertools/logger';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { planHandOff } from '../crawl/body';
import { getCrawlJob } from '../crawl/crawl-record';
import { BODY_PREFIX, ENV } from '../crawl/env-names';
import { requeueFrontier } from '../crawl/frontier';
import { METRIC } from '../crawl/metrics';
import {
  BODY_ATTRIBUTE,
  crawlLogKeys,
  FrontierMessage,
  type ParseMessage,
  parsePageMessage,
} from '../crawl/schemas';
import { boundedUrlKey, canonicalizeUrl, hostKey, urlHash } from '../crawl/url';
import { type Outcome, type OutcomeDetail, recordOutcome } from '../crawl/url-record';
import {
  type FinishingLater,
  finishLater,
  type GroupResult,
  poisonToDlq,
  processFifoBatchByGroup,
  receiveCount,
} from '../kit/batch';
import { ddb, s3, sqs } from '../kit/clients';
import { intEnv, requireEnv } from '../kit/env';
import { parseMessage } from '../kit/envelope';
import { logger, metrics, type RecordLogger, recordLogger, startInvocation } from '../kit/powertools';
import { type MessageAttributes, SendBatcher } from '../kit/send-batcher';
import { receivedExclusively, SourceVisibility } from '../kit/visibility';
import { classifyFailure, retryDelaySeconds, TransientFetchError, transientRetries } from './failures';
import { HostLanes } from './host-lanes';
import { decideFetch } from './policy';
import { loadRobots, RobotsCache } from './robots';
import { ConnectionPool, type FetchPolicy, safeFetch } from './safe-fetch';
import { dnsResolver, parseAllowedPorts, parseAllowedTargets } from './ssrf';
import {
  type CollectResult,
  firstSendKeys,
  type GroupAttempt,
  runGroup,
  UrlRecordPersistenceLayer,
} from './url-idempotency';

const config = {
  frontierQueueUrl: requireEnv(ENV.frontierQueueUrl),
  parseQueueUrl: requireEnv(ENV.parseQueueUrl),
  dlqUrl: requireEnv(ENV.dlqUrl),
  crawlsTable: requireEnv(ENV.crawlsTable),
  urlsTable: requireEnv(ENV.urlsTable),
  bodiesBucket: requireEnv(ENV.bodiesBucket),
  userAgent: requireEnv(ENV.userAgent),
  maxBodyBytes: intEnv(ENV.maxBodyBytes, 2 * 1024 * 1024),
  fetchTimeoutMs: intEnv(ENV.fetchTimeoutMs, 10_000),
  recordTtlSeconds: intEnv(ENV.recordTtlSeconds, 7 * 24 * 3600),
  maxReceiveCount: intEnv(ENV.maxReceiveCount, 5),
  inlineBodyMaxBytes: intEnv(ENV.inlineBodyMaxBytes, 192 * 1024),
  maxFetchesPerHost: intEnv(ENV.maxFetchesPerHost, 1),
  allowLoopbackPorts: parseAllowedPorts(process.env[ENV.fetchAllowLoopbackPorts]),
  allowTargets: parseAllowedTargets(process.env[ENV.fetchAllowTargets]),
  dnsServers: process.env[ENV.fetchDnsServers]?.split(',').filter(Boolean),
};

/** A host's pages of a batch share its connections; all are closed when the invocation ends. */
const connections = new ConnectionPool(32, config.maxFetchesPerHost);

const fetchPolicy: FetchPolicy = {
  userAgent: config.userAgent,
  connections,
  timeoutMs: config.fetchTimeoutMs,
  maxBodyBytes: config.maxBodyBytes,
  allowedContentTypes: ['text/html', 'application/xhtml+xml'],
  maxRedirects: 5,
  allowLoopbackPorts: config.allowLoopbackPorts,
  allowTargets: config.allowTargets,
  ...(config.dnsServers ? { resolver: dnsResolver(config.dnsServers) } : {}),
};

// Checked at load too, so a queue redeployed with too few receives fails loudly, not by dead-lettering URLs.
transientRetries(config.maxReceiveCount);

/** The frontier's visibility timeout: a first receive that it outlasts needs no group lease. */
const frontierVisibility = new SourceVisibility(process.env[ENV.sourceQueueUrl], sqs);

const robotsCache = new RobotsCache();
/** Last request time per host, for Crawl-delay. FIFO groups give one in-flight batch per host. */
const lastFetchAt = new Map<string, number>();

const idempotencyConfig = new IdempotencyConfig({ expiresAfterSeconds: config.recordTtlSeconds });
// The idempotency record lives on the URL's own item, so its completion also records the outcome.
const persistenceStore = new UrlRecordPersistenceLayer(config.urlsTable, ddb, config.recordTtlSeconds);

interface CrawlKey {
  crawlId: string;
  url: string;
}

/** A URL's outcome as the invocation's outcome line lists it. */
type LoggedOutcome = { url: string; outcome: Outcome } & Pick<OutcomeDetail, 'httpStatus' | 'detail'>;

/**
 * The outcomes of this invocation's URLs, by crawl, logged in one line when the batch ends: the Lambda
 * context fields once per batch instead of once per URL (about 660 bytes of a 740-byte line), because
 * CloudWatch Logs bills every byte. At INFO, the prod level, the line lists the URLs that were not fetched
 * (what an operator looks for) and counts the fetched ones; at DEBUG it lists every URL. Each outcome is
 * also on the URL's record, and the fetches are a metric. Listing the fetched URLs at INFO was two thirds
 * of the pipeline's log bytes in the bench's crawl.
 */
let batchOutcomes = new Map<string, LoggedOutcome[]>();

function logOutcome(crawlId: string, entry: LoggedOutcome): void {
  const list = batchOutcomes.get(crawlId) ?? [];
  list.push(entry);
  batchOutcomes.set(crawlId, list);
}

function flushOutcomeLog(): void {
  if (batchOutcomes.size === 0) return;
  if (logger.level <= LogLevelThreshold.DEBUG)
    logger.debug('url outcomes', { crawls: Object.fromEntries(batchOutcomes) });
  else {
    const others: Record<string, LoggedOutcome[]> = {};
    let fetched = 0;
    for (const [crawlId, list] of batchOutcomes) {
      const notFetched = list.filter((o) => o.outcome !== 'fetched');
      fetched += list.length - notFetched.length;
      if (notFetched.length > 0) others[crawlId] = notFetched;
    }
    if (Object.keys(others).length > 0) logger.info('url outcomes', { crawls: others, fetched });
  }
  batchOutcomes = new Map();
}

/**
 * Fetch one URL and hand its body on, at most once per (crawl, URL): a redelivered message finds the
 * completed idempotency record and returns the stored outcome without fetching again. The result
 * `collect` returns is what the completed record stores as the URL's outcome.
 */
const collectOnce = makeIdempotent(collect, {
  persistenceStore,
  config: idempotencyConfig,
  dataIndexArgument: 0,
});

async function collect(
  key: CrawlKey,
  message: FrontierMessage,
  record: SQSRecord,
  context: Context,
  parseSender: SendBatcher,
  lanes: HostLanes,
  started: () => void,
): Promise<CollectResult> {
  const log = recordLogger(record, crawlLogKeys(message));
  const { crawlId, url } = key;
  const depth = message.payload.depth;
  const finish = (outcome: Outcome, extra: OutcomeDetail = {}): CollectResult => {
    metrics.addMetric(outcome === 'blocked-address' ? METRIC.blocked : METRIC.outcome, 'Count', 1);
    logOutcome(crawlId, {
      url,
      outcome,
      ...(extra.httpStatus ? { httpStatus: extra.httpStatus } : {}),
      ...(extra.detail ? { detail: extra.detail } : {}),
    });
    return { outcome, depth, ...extra };
  };

  const job = await getCrawlJob(config.crawlsTable, crawlId);
  const origin = new URL(url).origin;
  const host = hostKey(url);
  const attempt = attemptOf(message, record);
  try {
    const rules = job ? await robotsCache.get(origin, (o) => loadRobots(o, fetchPolicy)) : undefined;
    const decision = decideFetch({ url, depth, job, robots: rules });
    if (decision.kind === 'skip') return finish(decision.outcome, { detail: decision.detail });

    await politenessDelay(host, decision.crawlDelayMs, context);
    started();
    const page = await lanes.run(
      host,
      // A host that sets a Crawl-delay gets one fetch at a time, that long apart; one that sets none, a few.
      decision.crawlDelayMs > 0 ? 1 : config.maxFetchesPerHost,
      () => safeFetch(url, fetchPolicy),
      // A failure that locks the host's group keeps the host's later URLs from starting.
      (error) => locksGroup(classifyFailure(error, attempt, config.maxReceiveCount).kind),
    );
    lastFetchAt.set(host, Date.now());
    metrics.addMetric(METRIC.pagesFetched, 'Count', 1);

    await handOff(message, url, page, parseSender, log);
    return finish('fetched', { httpStatus: page.status, finalUrl: page.finalUrl, bytes: page.body.length });
  } catch (error) {
    lastFetchAt.set(host, Date.now());
    const decision = classifyFailure(error, attempt, config.maxReceiveCount);
    if (decision.kind === 'outcome')
      return finish(decision.outcome, {
        detail: decision.detail,
        ...(decision.httpStatus ? { httpStatus: decision.httpStatus } : {}),
      });
    if (decision.kind === 'rethrow') throw error;
    log.warn(
      decision.kind === 'requeue'
        ? "transient fetch failure, will retry from the back of its host's queue"
        : 'transient fetch failure, will retry',
      { url, reason: decision.reason, attempt, error: (error as Error).message },
    );
    // Nothing is recorded for the URL either way: its next attempt runs as if this one had not happened.
    throw decision.kind === 'requeue' ? new RequeueFetch(attempt, error) : error;
  }
}

/** A fetch attempt's number: its message's receives, after the attempts of the messages it was requeued from. */
const attemptOf = (message: FrontierMessage, record: SQSRecord): number =>
  (message.payload.attempts ?? 0) + receiveCount(record);

/** Whether a failure leaves the record failed, locking its host's group behind it until the retry. */
const locksGroup = (kind: ReturnType<typeof classifyFailure>['kind']): boolean =>
  kind === 'retry' || kind === 'rethrow';

/** The fetch timed out and goes to the back of its host's group (classifyFailure's 'requeue'). */
class RequeueFetch extends Error {
  constructor(
    readonly attempts: number,
    cause: unknown,
  ) {
    super(`requeued after attempt ${attempts}: ${(cause as Error).message}`, { cause });
    this.name = 'RequeueFetch';
  }
}

/** Send the body on to the parser; resolves once the parse message is on the queue. */
async function handOff(
  message: FrontierMessage,
  url: string,
  page: { finalUrl: string; status: number; contentType: string; body: Buffer },
  parseSender: SendBatcher,
  log: RecordLogger,
): Promise<void> {
  const plan = planHandOff(page.body, config.inlineBodyMaxBytes);
  let ref: ParseMessage['payload']['body'];
  let attributes: MessageAttributes | undefined;
  if (plan.kind === 'attribute') {
    // Raw bytes in a binary attribute: SQS bills (and limits) them as they are, where base64 adds a third.
    ref = { kind: 'attribute', encoding: 'br' };
    attributes = { [BODY_ATTRIBUTE]: { DataType: 'Binary', BinaryValue: plan.compressed } };
  } else {
    const key = `${BODY_PREFIX}${message.crawlId}/${urlHash(message.crawlId, url)}.br`;
    await s3.send(new PutObjectCommand({ Bucket: config.bodiesBucket, Key: key, Body: plan.compressed }));
    ref = { kind: 's3', encoding: 'br', bucket: config.bodiesBucket, key };
    log.debug('body sent through S3 claim check', { url, key, compressedBytes: plan.compressed.length });
  }
  const parse = parsePageMessage(message.crawlId, message.correlationId, {
    url,
    depth: message.payload.depth,
    finalUrl: page.finalUrl,
    httpStatus: page.status,
    contentType: page.contentType,
    fetchedAt: Date.now(),
    ...(message.payload.discoveredFrom ? { discoveredFrom: message.payload.discoveredFrom } : {}),
    body: ref,
  });
  await parseSender.send(JSON.stringify(parse), attributes);
}

/** Wait out the host's Crawl-delay, or give the record back if the wait does not fit in this invocation. */
async function politenessDelay(host: string, delayMs: number, context: Context): Promise<void> {
  const last = lastFetchAt.get(host);
  if (!last || delayMs <= 0) return;
  const wait = last + delayMs - Date.now();
  if (wait <= 0) return;
  if (wait + config.fetchTimeoutMs + 2_000 > context.getRemainingTimeInMillis()) {
    throw new TransientFetchError(
      'crawl-delay',
      `crawl-delay of ${delayMs} ms for ${host} does not fit this invocation`,
    );
  }
  await new Promise((resolve) => setTimeout(resolve, wait));
}

async function handleRecord(
  record: SQSRecord,
  context: Context,
  parseSender: SendBatcher,
  running: Map<string, Promise<unknown>>,
  lanes: HostLanes,
): Promise<Outcome | 'requeued' | FinishingLater> {
  const reading = readRecord(record);
  if ('invalid' in reading) throw reading.invalid;
  const { message, url } = reading;
  if (url === undefined) {
    await recordOutcome(
      config.urlsTable,
      message.crawlId,
      boundedUrlKey(message.payload.url),
      'invalid-url',
      {
        detail: (reading.urlError as Error).message,
      },
      config.recordTtlSeconds,
    );
    logOutcome(message.crawlId, { url: message.payload.url, outcome: 'invalid-url' });
    return 'invalid-url';
  }
  // A URL starts once its host has room (see HostLanes), and not at all after a fetch of its host failed.
  // Once its fetch has started, the next URL of the host may start while this one fetches and its parse
  // message waits for its batch-mates: the group's hand-offs go out together, and each URL is completed
  // after its own. A second message for a URL an earlier record of this batch is still handing off waits
  // for it, then finds it completed and replays it.
  await lanes.room(hostKey(url));
  const key = `${message.crawlId} ${url}`;
  const earlier = running.get(key);
  if (earlier) await parseSender.whileWaiting(earlier.catch(() => undefined));
  let onStarted = () => {};
  const started = new Promise<'started'>((resolve) => {
    onStarted = () => resolve('started');
  });
  const work = parseSender.participate(async (): Promise<Outcome | 'requeued'> => {
    try {
      const result = await collectOnce(
        { crawlId: message.crawlId, url },
        message,
        record,
        context,
        parseSender,
        lanes,
        onStarted,
      );
      return result.outcome;
    } catch (error) {
      if (!(error instanceof RequeueFetch)) throw error;
      // The record is reported done only once its copy is on the queue; a crash before that redelivers it.
      await requeueFrontier(config.frontierQueueUrl, message, url, error.attempts, sqs);
      return 'requeued';
    }
  });
  running.set(key, work);
  const first = await Promise.race([work, started]);
  if (first !== 'started') return first;
  return finishLater(work);
}

/**
 * The lease and reads of one group's records in this receive (see GroupAttempt): one lease per host per
 * batch instead of one per URL, and none when no other receive can get the records while this invocation
 * runs. A record whose URL cannot be read is left out; it fails on its own.
 */
function groupAttempt(
  records: readonly SQSRecord[],
  context: Context,
  visibilitySeconds: number | undefined,
): GroupAttempt {
  const first = records[0] as SQSRecord;
  const messages = records.flatMap((record) => {
    const parsed = parsedRecord(record);
    if (!parsed) return [];
    const key = { crawlId: parsed.message.crawlId, url: parsed.url };
    return [{ key, payload: parsed.message.payload, receiveCount: receiveCount(record) }];
  });
  const keys = messages.map((m) => m.key);
  const deadlineMs = Date.now() + context.getRemainingTimeInMillis();
  return persistenceStore.group({
    groupId: first.attributes.MessageGroupId ?? '',
    owner: `${first.messageId}:${receiveCount(first)}`,
    messageIds: records.map((r) => r.messageId),
    keys,
    deadlineMs,
    exclusive: receivedExclusively(records, visibilitySeconds, deadlineMs),
    unread: firstSendKeys(messages),
  });
}

/**
 * A record reported failed comes back within seconds (retryDelay), though its URL may have been fetched: a
 * URL behind it in its host's group failed. Its completion, left to the parser's store of the page, is
 * written now, so the redelivery replays it instead of fetching again. A failed write only risks that.
 */
async function completeFailedFetches(
  attempt: GroupAttempt,
  records: readonly SQSRecord[],
  result: GroupResult,
): Promise<void> {
  if (attempt.deferred.size === 0 || result.batchItemFailures.length === 0) return;
  const failed = new Set(result.batchItemFailures.map((f) => f.itemIdentifier));
  const keys = records.flatMap((record) => {
    const parsed = failed.has(record.messageId) ? parsedRecord(record) : undefined;
    return parsed ? [{ crawlId: parsed.message.crawlId, url: parsed.url }] : [];
  });
  await persistenceStore.completeDeferred(attempt, keys).catch((error: unknown) =>
    logger.warn('could not record fetched URLs of failed records; their retry may fetch them again', {
      error: error as Error,
    }),
  );
}

/** A record read: its message and canonical URL, the URL's error, or why the message is invalid. */
type RecordReading =
  | { message: FrontierMessage; url: string }
  | { message: FrontierMessage; url: undefined; urlError: unknown }
  | { invalid: unknown };
const readings = new WeakMap<SQSRecord, { body: string; reading: RecordReading }>();

/**
 * Read a record once, however many times it is asked for: its handler and its group's reads, and when it
 * fails its retry delay and dead-lettered outcome, all need its message and URL, and each used to run the
 * schema check and the URL's parse again. Kept with the body it was read from, so a record object whose
 * body is replaced (as a test may do) is read again.
 */
function readRecord(record: SQSRecord): RecordReading {
  const cached = readings.get(record);
  let reading = cached?.body === record.body ? cached.reading : undefined;
  if (!reading) {
    try {
      const message = parseMessage(FrontierMessage, record.body);
      try {
        reading = { message, url: canonicalizeUrl(message.payload.url) };
      } catch (urlError) {
        reading = { message, url: undefined, urlError };
      }
    } catch (invalid) {
      reading = { invalid };
    }
    readings.set(record, { body: record.body, reading });
  }
  return reading;
}

/**
 * A record's message and canonical URL, or undefined when either does not parse: for the work around the
 * records (the group's reads, a dead-lettered outcome), where the record's own handler reports why.
 */
function parsedRecord(record: SQSRecord): { message: FrontierMessage; url: string } | undefined {
  const reading = readRecord(record);
  return 'invalid' in reading || reading.url === undefined ? undefined : reading;
}

/**
 * A URL whose message failed its last receive goes to the DLQ next: leave it an outcome that says so (a
 * redrive that later succeeds replaces it). That covers a URL skipped unrun behind a failing URL of its host
 * (`error` undefined). A message that does not parse has no URL to mark.
 */
async function recordDeadLettered(record: SQSRecord, error: unknown): Promise<void> {
  const parsed = parsedRecord(record);
  if (!parsed) return;
  const { message, url } = parsed;
  await persistenceStore.recordDeadLettered(
    { crawlId: message.crawlId, url },
    {
      depth: message.payload.depth,
      detail:
        error === undefined
          ? 'not attempted: an earlier URL of its host kept failing'
          : (error as Error).message,
    },
  );
}

export const handler = async (event: SQSEvent, context: Context): Promise<SQSBatchResponse> => {
  startInvocation(context);
  idempotencyConfig.registerLambdaContext(context);
  try {
    // One batcher per invocation: the parse messages of a host's batch, and of groups that finish together,
    // go out in one call. A message waits at most 5 s for batch-mates; waiting holds up no fetch.
    const parseSender = new SendBatcher(config.parseQueueUrl, sqs, 5_000);
    // The URLs this invocation's records are fetching or handing off, with their work.
    const running = new Map<string, Promise<unknown>>();
    // Each host's fetches in flight, so its next URL waits for room.
    const lanes = new HostLanes();
    const visibilitySeconds = await frontierVisibility.seconds();
    const attempts: GroupAttempt[] = [];
    const response = await processFifoBatchByGroup(
      event,
      context,
      poisonToDlq(config.dlqUrl, (record) => handleRecord(record, context, parseSender, running, lanes)),
      {
        aroundGroup: (run, records) => {
          const attempt = groupAttempt(records, context, visibilitySeconds);
          attempts.push(attempt);
          return runGroup(attempt, async () => {
            const result = await run();
            await completeFailedFetches(attempt, records, result);
            return result;
          });
        },
        // The group counts as busy while its records fetch; its hand-offs go out once they all have.
        aroundRecords: (run) => parseSender.participate(run),
        maxReceiveCount: config.maxReceiveCount,
        onLastReceiveFailure: recordDeadLettered,
        // Lambda would leave a failed record, and its host's group, for the whole visibility timeout
        // (6 minutes): back off by attempt, or as the server asked, within that timeout.
        retryDelay: {
          queueUrl: config.frontierQueueUrl,
          client: sqs,
          seconds: (record, error) => {
            const parsed = parsedRecord(record);
            const attempt = parsed ? attemptOf(parsed.message, record) : receiveCount(record);
            const delay = retryDelaySeconds(error, attempt);
            return visibilitySeconds === undefined ? delay : Math.min(delay, visibilitySeconds);
          },
        },
      },
    );
    // The rest of the groups' fetched URLs, acknowledged: one fetch log item names them all.
    await persistenceStore.logDeferred(attempts).catch((error: unknown) =>
      logger.warn('could not log fetched URLs; their outcome waits for the page to be stored', {
        error: error as Error,
      }),
    );
    return response;
  } finally {
    connections.closeAll();
    flushOutcomeLog();
    metrics.publishStoredMetrics();
  }
};
