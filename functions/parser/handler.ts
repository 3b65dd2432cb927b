import { GetObjectCommand, NoSuchKey } from '@aws-sdk/client-s3';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { decompressBody, encodedLimit } from '../crawl/body';
import { getCrawlJob } from '../crawl/crawl-record';
import { ENV } from '../crawl/env-names';
import { type LinksItem, linksPacking, outLinks, pageLinksItems } from '../crawl/link-graph';
import { METRIC } from '../crawl/metrics';
import { BODY_ATTRIBUTE, type BodyRef, crawlLogKeys, ParseMessage } from '../crawl/schemas';
import { recordFetchedUnstored, recordOutcome } from '../crawl/url-record';
import { poisonToDlq, processStandardBatch, receiveCount } from '../kit/batch';
import { s3, singleAttemptSqs } from '../kit/clients';
import { intEnv, requireEnv } from '../kit/env';
import { parseMessage } from '../kit/envelope';
import { InvalidMessageError, RetryableError } from '../kit/errors';
import { metrics, recordLogger, startInvocation } from '../kit/powertools';
import { SendBatcher } from '../kit/send-batcher';
import { decodeHtml } from './charset';
import { extractPage } from './extract';
import { discoverLinks } from './links';
import { pageWrite, storePage } from './store';

const config = {
  frontierQueueUrl: requireEnv(ENV.frontierQueueUrl),
  linksQueueUrl: requireEnv(ENV.linksQueueUrl),
  dlqUrl: requireEnv(ENV.dlqUrl),
  urlsTable: requireEnv(ENV.urlsTable),
  crawlsTable: requireEnv(ENV.crawlsTable),
  recordTtlSeconds: intEnv(ENV.recordTtlSeconds, 7 * 24 * 3600),
  // The crawler's limit on a decoded body: a body that decodes past it was not written by the crawler.
  maxBodyBytes: intEnv(ENV.maxBodyBytes, 2 * 1024 * 1024),
};

/** The compressed body of a parse message: its binary attribute, its inline base64, or its S3 object. */
async function loadBody(ref: BodyRef, record: SQSRecord): Promise<Buffer | undefined> {
  if (ref.kind === 'attribute') {
    const value = record.messageAttributes?.[BODY_ATTRIBUTE];
    // Lambda hands a binary attribute over as base64. One that is missing can never appear on a retry.
    if (value?.dataType !== 'Binary' || typeof value.binaryValue !== 'string')
      throw new InvalidMessageError(
        `parse message says its body is in the binary attribute "${BODY_ATTRIBUTE}", and it has none`,
      );
    return decompressBody(Buffer.from(value.binaryValue, 'base64'), config.maxBodyBytes);
  }
  if (ref.kind === 'inline') return decompressBody(Buffer.from(ref.data, 'base64'), config.maxBodyBytes);
  try {
    const out = await s3.send(new GetObjectCommand({ Bucket: ref.bucket, Key: ref.key }));
    // Refused before it is read: an object larger than any body the crawler writes.
    if ((out.ContentLength ?? 0) > encodedLimit(config.maxBodyBytes)) {
      (out.Body as { destroy?(): void } | undefined)?.destroy?.();
      throw new InvalidMessageError(
        `page body object ${ref.key} is ${out.ContentLength} bytes, more than any body the crawler writes`,
      );
    }
    return decompressBody(
      Buffer.from(await (out.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray()),
      config.maxBodyBytes,
    );
  } catch (error) {
    if (error instanceof NoSuchKey) return undefined;
    throw error;
  }
}

/**
 * Send the page's in-scope out-links to the ranker, in one message with the links of the pages parsed
 * beside it. `repeat` marks links that may have been sent before, so the ranker can bound its over-count.
 * The sender makes one attempt per request, so an unmarked page's links are never on the queue twice: a
 * failed send fails the records whose links it carried, and their redeliveries send the links marked. A
 * resend is still checked, in case a client with retries is ever passed in.
 */
async function sendLinks(
  sender: SendBatcher<LinksItem>,
  message: ParseMessage,
  links: readonly string[],
  repeat: boolean,
): Promise<void> {
  const { crawlId, correlationId } = message;
  const items = pageLinksItems(crawlId, correlationId, message.payload.url, links, repeat);
  const sent = await Promise.all(items.map((item) => sender.sendItem(item)));
  if (!repeat && sent.some((s) => s.resent))
    throw new RetryableError('page links were sent twice by the SDK; redelivering to mark them as a repeat');
}

/** Parse one page, store it once, and claim and enqueue its new links. Every step is safe to repeat. */
async function handleRecord(record: SQSRecord, linksSender: SendBatcher<LinksItem>): Promise<string> {
  const message = parseMessage(ParseMessage, record.body);
  const log = recordLogger(record, crawlLogKeys(message));
  const { url, finalUrl, depth } = message.payload;

  const body = await loadBody(message.payload.body, record);
  if (!body) {
    // The claim check expired before the parser got to it (lifecycle rule); record it, do not retry forever.
    await recordOutcome(
      config.urlsTable,
      message.crawlId,
      url,
      'body-missing',
      { depth },
      config.recordTtlSeconds,
    );
    log.error('page body missing from S3; recorded as body-missing', { url });
    return 'body-missing';
  }
  const { text, charset } = decodeHtml(body, message.payload.contentType);
  const page = extractPage(text, finalUrl);
  if (page.cut) log.warn('page parse stopped at a limit; keeping what was extracted', { url, cut: page.cut });

  // The page goes on its URL record, and the same write records the crawler's outcome `fetched`.
  const stored = await storePage(
    config.urlsTable,
    pageWrite(message, page, charset, body.length, config.recordTtlSeconds),
  );
  metrics.addMetric(stored === 'duplicate' ? METRIC.duplicatesSuppressed : METRIC.pagesStored, 'Count', 1);

  // Links are processed even for a duplicate: the first attempt may have died after storing the page.
  const job = await getCrawlJob(config.crawlsTable, message.crawlId);
  if (!job || page.nofollow) {
    log.debug('page stored', { url, stored, links: page.links.length, followed: false });
    return stored;
  }
  // Links this page may have sent before: a redelivery, or a page stored before (the same fetch, or an older one).
  const repeat = receiveCount(record) > 1 || stored !== 'stored';
  const links = await discoverLinks({
    crawlId: message.crawlId,
    correlationId: message.correlationId,
    claimant: url,
    depth,
    links: page.links,
    job,
    urlsTable: config.urlsTable,
    crawlsTable: config.crawlsTable,
    frontierQueueUrl: config.frontierQueueUrl,
    ttlSeconds: config.recordTtlSeconds,
    redelivered: receiveCount(record) > 1,
  });
  await sendLinks(linksSender, message, outLinks(url, page.links, job.allowedHosts), repeat);
  metrics.addMetric(METRIC.linksEnqueued, 'Count', links.enqueued);
  if (links.overBudget > 0) metrics.addMetric(METRIC.linksOverBudget, 'Count', links.overBudget);
  // DEBUG: at the prod level (INFO) a URL gets one line, the crawler's outcome; CloudWatch bills each byte.
  log.debug('page stored', { url, stored, links: page.links.length, ...links });
  return stored;
}

/**
 * A parse message that goes to the DLQ (its last receive failed, or it is invalid) leaves its URL the
 * crawler's outcome `fetched`, completed, where no page is stored: the URL says where it stopped and is not
 * fetched again, and a redrive stores the page. A message that does not parse names no URL.
 */
async function recordUnstored(record: SQSRecord): Promise<void> {
  let message: ParseMessage;
  try {
    message = parseMessage(ParseMessage, record.body);
  } catch {
    return;
  }
  const { url, depth, httpStatus, finalUrl } = message.payload;
  await recordFetchedUnstored(
    config.urlsTable,
    { crawlId: message.crawlId, url },
    { depth, httpStatus, finalUrl, detail: 'parse message dead-lettered; the page is not stored' },
    config.recordTtlSeconds,
  );
}

export const handler = async (event: SQSEvent, context: Context): Promise<SQSBatchResponse> => {
  startInvocation(context);
  try {
    // One sender per invocation: the links of a batch's pages go out together, packed into one message per
    // crawl (linksPacking). One attempt per request: a lost response fails the pages instead of sending
    // their links twice unmarked. A page's links wait up to 5 s for the batch's other pages: no page waits on
    // another's links send, and the invocation ends with its last page anyway, so the wait costs no time,
    // where a 50 ms wait sent a batch's links in 1.5 messages on average (each a receive for the ranker).
    const linksSender = new SendBatcher(config.linksQueueUrl, singleAttemptSqs(), 5_000, linksPacking);
    return await processStandardBatch(
      event,
      context,
      poisonToDlq(
        config.dlqUrl,
        (record) => linksSender.participate(() => handleRecord(record, linksSender)),
        recordUnstored,
      ),
      { onLastReceiveFailure: recordUnstored },
    );
  } finally {
    metrics.publishStoredMetrics();
  }
};
