import { LOCALSTACK_CREDENTIALS, makeTarget, stackOutputs, type Target } from '../../cli/target';
import { ENV } from '../../functions/shared/env-names';
import {
  LOCALSTACK_ENDPOINT,
  LOCALSTACK_FIXTURE_URL,
  STACK_NAME,
  targetRegion,
} from '../../localstack/settings';
import { serveFixtureSite } from './fixture-site';

/**
 * Which pipeline the portable suite runs against: INTEGRATION_TARGET=sandbox (default, what CI runs),
 * localstack (after `npm run deploy:local`) or aws (after `npm run deploy`). The tests only use `target`,
 * so every assertion that runs here in CI is the same one that runs against LocalStack and AWS.
 */
export interface ConnectedTarget {
  readonly kind: 'sandbox' | 'localstack' | 'aws';
  readonly target: Target;
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
  const region = targetRegion();
  if (kind === 'localstack') {
    const credentials = LOCALSTACK_CREDENTIALS;
    const outputs = await stackOutputs(STACK_NAME, region, LOCALSTACK_ENDPOINT, credentials);
    const e = LOCALSTACK_ENDPOINT;
    const target = makeTarget(
      'localstack',
      outputs,
      { sqs: e, dynamodb: e, s3: e },
      { region, credentials, supportsMessageMoveTask: false },
    );
    return {
      kind,
      target,
      effectTimeoutMs,
      fixtureSiteUrl: process.env.FIXTURE_SITE_URL ?? LOCALSTACK_FIXTURE_URL,
      stop: async () => {},
    };
  }
  if (kind === 'aws') {
    const target = makeTarget(
      'aws',
      await stackOutputs(STACK_NAME, region),
      {},
      { region, supportsMessageMoveTask: true },
    );
    return {
      kind,
      target,
      effectTimeoutMs,
      ...(process.env.FIXTURE_SITE_URL ? { fixtureSiteUrl: process.env.FIXTURE_SITE_URL } : {}),
      stop: async () => {},
    };
  }
  const { startSandbox } = await import('../../sandbox/sandbox');
  const site = await serveFixtureSite();
  const sandbox = await startSandbox({
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
