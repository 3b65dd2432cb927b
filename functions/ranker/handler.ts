import { PutObjectCommand } from '@aws-sdk/client-s3';
import type { Context, SQSBatchItemFailure, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { ENV } from '../crawl/env-names';
import { batchKey, edgeLogBody, edgeLogKey } from '../crawl/link-graph';
import { METRIC } from '../crawl/metrics';
import { putBatchCounts } from '../crawl/rank-record';
import { LinksMessage, type PageLinks, pagesOf } from '../crawl/schemas';
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

interface Counted {
  readonly record: SQSRecord;
  readonly message: LinksMessage;
}

/**
 * One crawl's share of a batch: its edges go to the edge log as one object, then the batch's counts (the
 * links it found to each URL) as one item. Both are named by the batch, so a retry of the same batch
 * rewrites them instead of adding to them. Returns the records to retry: all of them, or none. A record
 * counted again in another batch arrives with a receive count above 1, and its links join the over-count
 * bound.
 */
async function rankCrawl(crawlId: string, entries: readonly Counted[]): Promise<SQSRecord[]> {
  const log = logger.createChild({ persistentKeys: { crawlId } });
  const pages: PageLinks[] = [];
  const key = batchKey(entries.map((e) => e.record.messageId));
  const counts = new Map<string, number>();
  let edges = 0;
  let repeats = 0;
  let overcountBound = 0;
  for (const entry of entries) {
    const redelivered = receiveCount(entry.record) > 1;
    for (const page of pagesOf(entry.message)) {
      const { links, repeat } = page;
      pages.push(page);
      edges += links.length;
      if (repeat || redelivered) {
        repeats++;
        overcountBound += links.length;
      }
      for (const url of links) counts.set(url, (counts.get(url) ?? 0) + 1);
    }
  }
  try {
    await s3.send(
      new PutObjectCommand({
        Bucket: config.edgesBucket,
        Key: edgeLogKey(crawlId, key),
        Body: edgeLogBody(pages),
        ContentType: 'application/x-ndjson',
        ContentEncoding: 'gzip',
      }),
    );
    metrics.addMetric(METRIC.edgeLogObjects, 'Count', 1);
    await putBatchCounts(
      ddb,
      config.ranksTable,
      crawlId,
      key,
      counts,
      { pages: pages.length, edges, overcountBound, repeats },
      config.recordTtlSeconds,
    );
  } catch (error) {
    log.error('edge log or count write failed; the batch returns to the queue', { error: error as Error });
    return entries.map((e) => e.record);
  }
  metrics.addMetric(METRIC.edgesCounted, 'Count', edges);
  return [];
}

/**
 * The ranker: the streaming side of the crawl's ranking. It reads page-links messages in large batches
 * (a batching window gathers them), keeps inbound-link counts per URL (approximate: at-least-once
 * delivery may count a page's links twice, and the batch items bound by how much), and writes the edge log
 * the exact offline ranking (sql/inlinks.sql) reads. A malformed message goes to the DLQ alone.
 */
export const handler = async (event: SQSEvent, context: Context): Promise<SQSBatchResponse> => {
  startInvocation(context);
  try {
    const failures: SQSBatchItemFailure[] = [];
    const byCrawl = new Map<string, Counted[]>();
    const parse = poisonToDlq(config.dlqUrl, async (record) => parseMessage(LinksMessage, record.body));
    for (const record of event.Records) {
      let parsed: unknown;
      try {
        parsed = await parse(record);
      } catch {
        failures.push({ itemIdentifier: record.messageId });
        continue;
      }
      if (typeof parsed === 'string') continue; // forwarded to the DLQ with its reason
      const message = parsed as LinksMessage;
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
