/** The gift pipeline's metric names, shared by its functions and its dashboard graphs. */
export const GIFT_METRIC = {
  couponsGranted: 'couponsGranted',
  soldOut: 'soldOut',
  unknownEvent: 'unknownEvent',
  duplicateEntries: 'duplicateEntries',
  notificationsSent: 'notificationsSent',
  duplicateNotifications: 'duplicateNotifications',
} as const;

/** The CloudWatch namespace of the gift pipeline's metrics. */
export const GIFT_METRICS_NAMESPACE = 'GiftPipeline';
