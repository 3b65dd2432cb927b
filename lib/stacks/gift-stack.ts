import path from 'node:path';
import { Duration, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import { GIFT_ENV } from '../../functions/gift/env-names';
import { GIFT_METRIC, GIFT_METRICS_NAMESPACE } from '../../functions/gift/metrics';
import { type StageConfig, stageDefaults } from '../config';
import { PipelineStack } from '../constructs/pipeline-stack';
import { PipelineStage } from '../constructs/pipeline-stage';

export interface GiftStackProps extends StackProps {
  readonly config: StageConfig;
}

const functionsDir = path.join(import.meta.dirname, '..', '..', 'functions', 'gift');

/**
 * The notes' first-come survey gift event, on the same kit as the crawler: a submission is queued at once
 * (FIFO, group = userId), the issue stage grants at most one coupon per user while stock lasts (one
 * transaction: the grant claim and an atomic stock decrement), and the notify stage records exactly one
 * notification per coupon.
 */
export class GiftStack extends PipelineStack {
  public readonly entries: PipelineStage;
  public readonly notify: PipelineStage;

  constructor(scope: Construct, id: string, props: GiftStackProps) {
    const { config } = props;
    super(scope, id, { ...props, ...stageDefaults(config), metricsNamespace: GIFT_METRICS_NAMESPACE });
    const stock = this.addTable('StockTable', { partitionKey: 'eventId' });
    const grants = this.addTable('GrantsTable', {
      partitionKey: 'eventId',
      sortKey: 'userId',
      timeToLive: true,
    });
    const notifications = this.addTable('NotificationsTable', { partitionKey: 'couponId', timeToLive: true });
    const ttl = { [GIFT_ENV.recordTtlSeconds]: String(config.recordTtl.toSeconds()) };

    // Notify: one notification per coupon (standard queue; 3 receives, then the DLQ).
    this.notify = new PipelineStage(this, 'Notify', {
      entry: path.join(functionsDir, 'notify.ts'),
      serviceName: 'notify',
      maxReceiveCount: 3,
      environment: ttl,
    }).bindTable(notifications, 'rw', GIFT_ENV.notificationsTable);
    // Issue: entries in per-user order (group = userId), a coupon or a recorded refusal each.
    this.entries = new PipelineStage(this, 'Entries', {
      fifo: true,
      highThroughputFifo: true,
      entry: path.join(functionsDir, 'issue.ts'),
      serviceName: 'issue',
      timeout: Duration.seconds(20),
      environment: ttl,
    })
      .bindTable(stock, 'rw', GIFT_ENV.stockTable)
      .bindTable(grants, 'rw', GIFT_ENV.grantsTable)
      .bindQueue(this.notify.queue, GIFT_ENV.notifyQueueUrl);

    this.addMetricGraph('Entries', [
      { name: GIFT_METRIC.couponsGranted, service: 'issue' },
      { name: GIFT_METRIC.soldOut, service: 'issue' },
      { name: GIFT_METRIC.duplicateEntries, service: 'issue' },
    ]);
    this.addMetricGraph('Notifications', [
      { name: GIFT_METRIC.notificationsSent, service: 'notify' },
      { name: GIFT_METRIC.duplicateNotifications, service: 'notify' },
    ]);
  }
}
