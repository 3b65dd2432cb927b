import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { poisonToDlq, processStandardBatch } from '../kit/batch';
import { ddb } from '../kit/clients';
import { intEnv, requireEnv } from '../kit/env';
import { parseMessage } from '../kit/envelope';
import { metrics, recordLogger, startInvocation } from '../kit/powertools';
import { GIFT_ENV } from './env-names';
import { CouponMessage, giftLogKeys } from './messages';
import { GIFT_METRIC } from './metrics';
import { recordNotification } from './records';

const config = {
  dlqUrl: requireEnv(GIFT_ENV.dlqUrl),
  notificationsTable: requireEnv(GIFT_ENV.notificationsTable),
  recordTtlSeconds: intEnv(GIFT_ENV.recordTtlSeconds, 7 * 24 * 3600),
};

/**
 * Notify the winner of one coupon, exactly once: the notification record is claimed by coupon id, so a
 * coupon message sent twice (the issue stage resends after a crash) or delivered twice is recorded once.
 * Sending the e-mail or push itself would go here, after the claim, keyed by the coupon id at the provider.
 */
export async function notify(record: SQSRecord): Promise<'notified' | 'already-notified'> {
  const coupon = parseMessage(CouponMessage, record.body);
  const result = await recordNotification(
    ddb,
    config.notificationsTable,
    { couponId: coupon.payload.couponId, eventId: coupon.eventId, userId: coupon.userId },
    config.recordTtlSeconds,
  );
  metrics.addMetric(
    result === 'notified' ? GIFT_METRIC.notificationsSent : GIFT_METRIC.duplicateNotifications,
    'Count',
    1,
  );
  recordLogger(record, giftLogKeys(coupon)).info('coupon notification', { result });
  return result;
}

export const handler = async (event: SQSEvent, context: Context): Promise<SQSBatchResponse> => {
  startInvocation(context);
  try {
    return await processStandardBatch(event, context, poisonToDlq(config.dlqUrl, notify));
  } finally {
    metrics.publishStoredMetrics();
  }
};
