/** The crawler's metric names, shared by its functions and the dashboard in lib/stacks/crawler-stack.ts. */
export const METRIC = {
  pagesFetched: 'pagesFetched',
  pagesStored: 'pagesStored',
  duplicatesSuppressed: 'duplicatesSuppressed',
  blocked: 'blocked',
  linksEnqueued: 'linksEnqueued',
  linksOverBudget: 'linksOverBudget',
  outcome: 'outcome',
  edgesCounted: 'edgesCounted',
  edgeLogObjects: 'edgeLogObjects',
} as const;

/** The CloudWatch namespace of the crawler's metrics; the stack passes it to its consumers. */
export const METRICS_NAMESPACE = 'CrawlerPipeline';
