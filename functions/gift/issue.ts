import { SendMessageCommand } from '@aws-sdk/client-sqs';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { poisonToDlq, processFifoBatchByGroup } from '../kit/batch';
import { ddb, sqs } from '../kit/clients';
import { intEnv, requireEnv } from '../kit/env';
import { parseMessage } from '../kit/envelope';
import { metrics, recordLogger, startInvocation } from '../kit/powertools';
import { GIFT_ENV } from './env-names';
import { couponMessage, EntryMessage, entryHash, giftLogKeys } from './messages';
import { GIFT_METRIC } from './metrics';
import { type Decision, grantCoupon, recordRefusal, stockLeft } from './records';

const config = {
  dlqUrl: requireEnv(GIFT_ENV.dlqUrl),
  stockTable: requireEnv(GIFT_ENV.stockTable),
  grantsTable: requireEnv(GIFT_ENV.grantsTable),
  notifyQueueUrl: requireEnv(GIFT_ENV.notifyQueueUrl),
  recordTtlSeconds: intEnv(GIFT_ENV.recordTtlSeconds, 7 * 24 * 3600),
};

export type IssueResult = { decision: Decision; first: boolean };

/**
 * Decide one entry: a coupon while stock lasts, at most one per (event, user), else a recorded refusal.
 * Every step is safe to repeat. A redelivery, or a second delivery racing the first, finds the grant and
 * changes nothing; a coupon's message to the notify stage is sent again, because the first attempt may
 * have died between the grant and the send, and the notify stage records each coupon once.
 */
export async function issue(record: SQSRecord): Promise<IssueResult> {
  const entry = parseMessage(EntryMessage, record.body);
  const log = recordLogger(record, giftLogKeys(entry));
  const { eventId, userId } = entry;
  const tables = { stock: config.stockTable, grants: config.grantsTable };
  const outcome = await grantCoupon(
    ddb,
    tables,
    { eventId, userId, answers: entry.payload.answers, couponId: entryHash(eventId, userId) },
    config.recordTtlSeconds,
  );
  let decision: Decision;
  let first: boolean;
  if (outcome.kind === 'no-stock') {
    const refusal =
      (await stockLeft(ddb, config.stockTable, eventId)) === undefined ? 'unknown-event' : 'sold-out';
    const recorded = await recordRefusal(
      ddb,
      config.grantsTable,
      { eventId, userId, answers: entry.payload.answers },
      refusal,
      config.recordTtlSeconds,
    );
    first = recorded.claimed;
    decision = recorded.claimed ? refusal : (recorded.existing.decision as Decision);
  } else {
    first = outcome.kind === 'granted';
    decision = outcome.grant.decision;
  }
  if (decision === 'coupon')
    await sqs.send(
      new SendMessageCommand({
        QueueUrl: config.notifyQueueUrl,
        MessageBody: JSON.stringify(couponMessage(entry)),
      }),
    );
  if (!first) metrics.addMetric(GIFT_METRIC.duplicateEntries, 'Count', 1);
  else
    metrics.addMetric(
      decision === 'coupon'
        ? GIFT_METRIC.couponsGranted
        : decision === 'sold-out'
          ? GIFT_METRIC.soldOut
          : GIFT_METRIC.unknownEvent,
      'Count',
      1,
    );
  log.info('entry decided', { decision, first });
  return { decision, first };
}

export const handler = async (event: SQSEvent, context: Context): Promise<SQSBatchResponse> => {
  startInvocation(context);
  try {
    // Group = userId: one user's entries run in order, different users side by side.
    return await processFifoBatchByGroup(event, context, poisonToDlq(config.dlqUrl, issue));
  } finally {
    metrics.publishStoredMetrics();
  }
};
