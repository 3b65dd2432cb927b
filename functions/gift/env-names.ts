import { KIT_ENV } from '../kit/env-names';

/** Environment variables the gift stack sets and its functions read. */
export const GIFT_ENV = {
  ...KIT_ENV,
  stockTable: 'STOCK_TABLE',
  grantsTable: 'GRANTS_TABLE',
  notificationsTable: 'NOTIFICATIONS_TABLE',
  notifyQueueUrl: 'NOTIFY_QUEUE_URL',
  recordTtlSeconds: 'RECORD_TTL_SECONDS',
} as const;
