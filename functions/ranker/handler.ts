import { PutObjectCommand } from '@aws-sdk/client-s3';
import type { Context, SQSBatchItemFailure, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import pLimit from 'p-limit';
import { ENV } from '../crawl/env-names';
import { edgeLogBody, edgeLogKey, uncountedLinks } from '../crawl/link-graph';
import { METRIC } from '../crawl/metrics';
import { addInlinks, addRankSummary } from '../crawl/rank-record';
import { PageLinksMessage } from '../crawl/schemas';
import { poisonToDlq, receiveCount } from '../kit/batch';
import { ddb, s3 } from '../kit/clients';
import { intEnv, requireEnv } from '../kit/env';
import { parseMessage } from '../kit/envelope';
import { logger, metrics, startInvocation } from '../kit/powertools';

const config = {
  dlqUrl: requireEnv(ENV.dlqUrl),
  ranksTable: requireEnv(ENV.ranksTable),
  edgesBucket: requireEnv(ENV.edgesBucket),
  recordTtlSeconds: intEnv(ENV.recordTtlSeconds, 7 * 24 * 3600),
};

/** Count writes in flight at once: enough to hide latency, few enough not to throttle one partition. */
const WRITES_AT_ONCE = 16;

interface Counted {
  readonly record: SQSRecord;
  readonly message: PageLinksMessage;
}

/**
 * One crawl's share of a batch: its edges go to the edge log as one object, then each linked URL's count
 * rises by the links this batch found to it (one write per URL, not per link; a link the page claimed is
 * counted by its claim, for nothing), then the crawl's summary.
 * Returns the records to retry. A record counted again on retry arrives with a receive count above 1, so
 * its links join the over-count bound; a count write the SDK resent joins it too.
 */
async function rankCrawl(crawlId: string, entries: readonly Counted[]): Promise<SQSRecord[]> {
  const log = logger.createChild({ persistentKeys: { crawlId } });
  const messages = entries.map((e) => e.message);
  try {
    await s3.send(
      new PutObjectCommand({
        Bucket: config.edgesBucket,
        Key: edgeLogKey(
          crawlId,
          entries.map((e) => e.record.messageId),
        ),
        Body: edgeLogBody(messages),
        ContentType: 'application/x-ndjson',
        ContentEncoding: 'gzip',
      }),
    );
  } catch (error) {
    log.error('edge log write failed; the batch returns to the queue', { error: error as Error });
    return entries.map((e) => e.record);
  }
  metrics.addMetric(METRIC.edgeLogObjects, 'Count', 1);

  const perUrl = new Map<string, { n: number; from: Counted[] }>();
  let edges = 0;
  let repeats = 0;
  let overcountBound = 0;
  for (const entry of entries) {
    const { links, repeat } = entry.message.payload;
    const counted = uncountedLinks(entry.message);
    edges += links.length;
    if (repeat || receiveCount(entry.record) > 1) {
      repeats++;
      overcountBound += counted.length;
    }
    for (const url of counted) {
      const slot = perUrl.get(url) ?? { n: 0, from: [] };
      slot.n++;
      slot.from.push(entry);
      perUrl.set(url, slot);
    }
  }
  const failed = new Set<SQSRecord>();
  const limit = pLimit(WRITES_AT_ONCE);
  await Promise.all(
    [...perUrl].map(([url, slot]) =>
      limit(async () => {
        try {
          const { resent } = await addInlinks(
            ddb,
            config.ranksTable,
            crawlId,
            url,
            slot.n,
            config.recordTtlSeconds,
          );
          if (resent) overcountBound += slot.n;
        } catch (error) {
          log.warn('count write failed; its records return to the queue', { url, error: error as Error });
          for (const e of slot.from) failed.add(e.record);
        }
      }),
    ),
  );
  try {
    await addRankSummary(
      ddb,
      config.ranksTable,
      crawlId,
      { pages: entries.length, edges, overcountBound, repeats },
      config.recordTtlSeconds,
    );
  } catch (error) {
    log.error('summary write failed; the batch returns to the queue', { error: error as Error });
    return entries.map((e) => e.record);
  }
  metrics.addMetric(METRIC.edgesCounted, 'Count', edges);
  return [...failed];
}

/**
 * The ranker: the streaming side of the crawl's ranking. It reads page-links messages in large batches
 * (a batching window gathers them), keeps an inbound-link count per URL (approximate: at-least-once
 * delivery may count a page's links twice, and the summary bounds by how much), and writes the edge log
 * the exact offline ranking (sql/inlinks.sql) reads. A malformed message goes to the DLQ alone.
 */
export const handler = async (event: SQSEvent, context: Context): Promise<SQSBatchResponse> => {
  startInvocation(context);
  try {
    const failures: SQSBatchItemFailure[] = [];
    const byCrawl = new Map<string, Counted[]>();
    const parse = poisonToDlq(config.dlqUrl, async (record) => parseMessage(PageLinksMessage, record.body));
    for (const record of event.Records) {
      let parsed: unknown;
      try {
        parsed = await parse(record);
      } catch {
        failures.push({ itemIdentifier: record.messageId });
        continue;
      }
      if (typeof parsed === 'string') continue; // forwarded to the DLQ with its reason
      const message = parsed as PageLinksMessage;
      const list = byCrawl.get(message.crawlId) ?? [];
      list.push({ record, message });
      byCrawl.set(message.crawlId, list);
    }
    const retry = await Promise.all([...byCrawl].map(([crawlId, entries]) => rankCrawl(crawlId, entries)));
    for (const record of retry.flat()) failures.push({ itemIdentifier: record.messageId });
    return { batchItemFailures: failures };
  } finally {
    metrics.publishStoredMetrics();
  }
};
