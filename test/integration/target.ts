import { CRAWLER_OUTPUTS, type CrawlerTarget } from '../../cli/crawl-api';
import { ENV } from '../../functions/crawl/env-names';
import {
  LOCALSTACK_ENDPOINT,
  LOCALSTACK_FIXTURE_URL,
  STACK_NAME,
  targetRegion,
} from '../../localstack/settings';
import { connectDeployed } from '../../tooling/target';
import { serveFixtureSite } from './fixture-site';

/**
 * Which pipeline the portable suite runs against: INTEGRATION_TARGET=sandbox (default, what CI runs),
 * localstack (after `npm run deploy:local`) or aws (after `npm run deploy`). The tests only use `target`,
 * so every assertion that runs here in CI is the same one that runs against LocalStack and AWS.
 */
export interface ConnectedTarget {
  readonly kind: 'sandbox' | 'localstack' | 'aws';
  readonly target: CrawlerTarget;
  /** Longest wait for an asynchronous effect: deployed functions are slower to scale from zero. */
  readonly effectTimeoutMs: number;
  /**
   * Root URL of the fixture site (localstack/fixture-site) as the deployed crawler reaches it: on loopback
   * for the sandbox, on the compose network for LocalStack, and FIXTURE_SITE_URL for AWS (the same files
   * on any public host), which has no fixture site otherwise.
   */
  readonly fixtureSiteUrl?: string;
  stop(): Promise<void>;
}

export type TargetKind = ConnectedTarget['kind'];

/** The target named by INTEGRATION_TARGET; known before any connection, so tests can size their timeouts. */
export function targetKind(): TargetKind {
  const kind = process.env.INTEGRATION_TARGET ?? 'sandbox';
  if (kind !== 'sandbox' && kind !== 'localstack' && kind !== 'aws')
    throw new Error(`INTEGRATION_TARGET must be sandbox, localstack or aws, not "${kind}"`);
  return kind;
}

/**
 * How long an effect may take on each target, and so how long a test may run. LocalStack's event source
 * mapping backs off up to 10 s on an empty queue and starts each function in a container; AWS adds cold
 * starts and the real visibility timeouts. A test runs up to a few effects in a row.
 */
export const TARGET_TIMEOUTS: Record<TargetKind, { effectMs: number; testMs: number }> = {
  sandbox: { effectMs: 60_000, testMs: 120_000 },
  localstack: { effectMs: 180_000, testMs: 600_000 },
  aws: { effectMs: 300_000, testMs: 900_000 },
};

export async function connectTarget(): Promise<ConnectedTarget> {
  const kind = targetKind();
  const effectTimeoutMs = TARGET_TIMEOUTS[kind].effectMs;
  if (kind === 'localstack' || kind === 'aws') {
    // The one target resolver, shared with the CLI.
    const target = await connectDeployed(kind, STACK_NAME, targetRegion(), {
      endpoint: LOCALSTACK_ENDPOINT,
      required: CRAWLER_OUTPUTS,
    });
    const fixtureSiteUrl =
      process.env.FIXTURE_SITE_URL ?? (kind === 'localstack' ? LOCALSTACK_FIXTURE_URL : undefined);
    return {
      kind,
      target,
      effectTimeoutMs,
      ...(fixtureSiteUrl ? { fixtureSiteUrl } : {}),
      stop: async () => target.destroy(),
    };
  }
  const { startSandbox } = await import('../../sandbox/sandbox');
  const site = await serveFixtureSite();
  const sandbox = await startSandbox({
    outputs: CRAWLER_OUTPUTS,
    retryDelaySeconds: 1,
    functionEnv: { [ENV.fetchAllowLoopbackPorts]: String(site.port) },
  }).catch(async (error) => {
    await site.stop();
    throw error;
  });
  return {
    kind,
    target: sandbox.target,
    effectTimeoutMs,
    fixtureSiteUrl: site.url,
    stop: async () => {
      await sandbox.stop();
      await site.stop();
    },
  };
}
