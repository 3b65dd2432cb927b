import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { CRAWLER_OUTPUTS, type CrawlerOutput, type CrawlerTarget } from '../../cli/crawl-api';
import { type DemoSite, type DemoSiteOptions, startDemoSite } from '../../sandbox/demo-site';
import type { InvocationStats } from '../../sandbox/runner';
import { type Sandbox, type SandboxOptions, startSandbox } from '../../sandbox/sandbox';
import type { Ranked } from '../../tooling/ranking';

/**
 * The integration suite's view of a deployed pipeline. Tests talk only to `target` (queues, tables,
 * buckets through the AWS SDK), so the same assertions run against the sandbox here and against
 * LocalStack or AWS (see localstack/ and `npm run test:localstack`), where the demo site must be
 * reachable from the functions.
 */
export interface Harness {
  readonly target: CrawlerTarget;
  readonly demo: DemoSite;
  /** Invocations the local event-source runners made, for counting retries. Sandbox only. */
  readonly invocations: InvocationStats[];
  readonly sandbox: Sandbox<CrawlerOutput>;
  stop(): Promise<void>;
}

export async function startHarness(
  options: { sandbox?: SandboxOptions<CrawlerOutput>; demo?: DemoSiteOptions } = {},
): Promise<Harness> {
  const demo = await startDemoSite(options.demo);
  const invocations: InvocationStats[] = [];
  const sandbox = await startSandbox({
    outputs: CRAWLER_OUTPUTS,
    retryDelaySeconds: 1,
    ...options.sandbox,
    functionEnv: {
      CRAWLER_TEST_ALLOW_LOOPBACK_PORTS: demo.ports.join(','),
      FETCH_TIMEOUT_MS: '2000',
      POWERTOOLS_LOG_LEVEL: 'INFO',
      ...options.sandbox?.functionEnv,
    },
    onInvoke: (s) => invocations.push(s),
  });
  return {
    target: sandbox.target,
    demo,
    invocations,
    sandbox,
    async stop() {
      await sandbox.stop();
      await demo.stop();
    },
  };
}

/** Records the parser (or crawler) was handed since `from`: each retry counts again. */
export function recordsHandled(h: Harness, fnPrefix: string, from = 0): number {
  return h.invocations
    .slice(from)
    .filter((i) => i.functionId.startsWith(fnPrefix))
    .reduce((n, i) => n + i.records, 0);
}

export type Handler = (event: SQSEvent, context: unknown) => Promise<SQSBatchResponse>;

/**
 * The exact ranking computed from the demo site's own link model, with no pipeline code: for each URL on
 * the site's hosts, the number of distinct stored pages other than itself that link to it.
 */
export function rankingFromSiteModel(demo: DemoSite, stored: ReadonlySet<string>): Ranked[] {
  const from = new Map<string, Set<string>>();
  for (const src of stored)
    for (const href of demo.linksOf(src) ?? []) {
      const dst = new URL(href, src).href;
      if (dst === src || !demo.hosts.includes(new URL(dst).host)) continue;
      from.set(dst, (from.get(dst) ?? new Set()).add(src));
    }
  return [...from]
    .map(([url, pages]) => ({ url, inlinks: pages.size }))
    .sort((a, b) => b.inlinks - a.inlinks || (a.url < b.url ? -1 : 1));
}
