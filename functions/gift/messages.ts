import { createHash } from 'node:crypto';
import * as z from 'zod/mini';
import { envelope, envelopeFields, safeId } from '../kit/envelope';

/** The ids every gift message carries: one user's entry to one event. */
const entryIds = { eventId: safeId('eventId'), userId: safeId('userId') };

/** A survey submission: accepted at once and queued, decided later by the issue stage. */
export const EntryMessage = envelope(
  'gift.entry',
  z.object({
    /** Survey answers, question id → answer: at most 20, each answer at most 500 characters. */
    answers: z
      .record(z.string().check(z.minLength(1), z.maxLength(64)), z.string().check(z.maxLength(500)))
      .check(z.refine((a) => Object.keys(a).length <= 20, 'at most 20 answers')),
  }),
  entryIds,
);
export type EntryMessage = z.infer<typeof EntryMessage>;

/** A coupon granted to a user, for the notify stage. */
export const CouponMessage = envelope(
  'gift.coupon',
  z.object({ couponId: z.string().check(z.regex(/^[0-9a-f]{32}$/, 'couponId is 32 hex digits')) }),
  entryIds,
);
export type CouponMessage = z.infer<typeof CouponMessage>;

/**
 * One hash of (eventId, userId), used three ways: the entry's FIFO dedup id (SQS drops a resubmission
 * inside its 5-minute window), the coupon id (the same on every retry, so a resent coupon message is the
 * same coupon), and the notify stage's dedup key.
 */
export const entryHash = (eventId: string, userId: string): string =>
  createHash('sha256')
    .update(JSON.stringify([eventId, userId]))
    .digest('hex')
    .slice(0, 32);

/** Build an entry message: the one place its envelope is filled in. */
export function entryMessage(
  eventId: string,
  userId: string,
  answers: Record<string, string>,
  correlationId: string,
): EntryMessage {
  return { ...envelopeFields('gift.entry', correlationId), eventId, userId, payload: { answers } };
}

/** Build a coupon message for a granted entry. */
export function couponMessage(
  entry: Pick<EntryMessage, 'eventId' | 'userId' | 'correlationId'>,
): CouponMessage {
  return {
    ...envelopeFields('gift.coupon', entry.correlationId),
    eventId: entry.eventId,
    userId: entry.userId,
    payload: { couponId: entryHash(entry.eventId, entry.userId) },
  };
}

/** The keys every log line about a gift message carries. */
export const giftLogKeys = (m: { eventId: string; userId: string; correlationId: string }) => ({
  eventId: m.eventId,
  userId: m.userId,
  correlationId: m.correlationId,
});
