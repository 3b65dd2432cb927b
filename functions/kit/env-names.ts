/**
 * Environment variables the kit's constructs set on every consumer and the kit's handler helpers read.
 * A pipeline keeps its own names beside its functions (the crawler's are in functions/crawl/env-names.ts).
 */
export const KIT_ENV = {
  /** The consumer's own DLQ, for poison messages. Set by QueueConsumer. */
  dlqUrl: 'DLQ_URL',
  /** The consumer's source queue, whose attributes (the visibility timeout) the handler may read. */
  sourceQueueUrl: 'SOURCE_QUEUE_URL',
  /** The source queue's maxReceiveCount: the receive after which a failing message is dead-lettered. */
  maxReceiveCount: 'MAX_RECEIVE_COUNT',
  /** V8's semi-space in MB, read by functions/kit/heap-wrapper.sh. Set by QueueConsumer's `semiSpaceMb`. */
  semiSpaceMb: 'V8_SEMI_SPACE_MB',
  /** V8's --heap-growing-percent, read by functions/kit/heap-wrapper.sh. Set by QueueConsumer's `heapGrowingPercent`. */
  heapGrowingPercent: 'V8_HEAP_GROWING_PERCENT',
} as const;
