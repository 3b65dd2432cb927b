import { LOCALSTACK_CREDENTIALS, makeTarget, stackOutputs, type Target } from '../../cli/target';

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
  stop(): Promise<void>;
}

export const LOCALSTACK_ENDPOINT = process.env.LOCALSTACK_ENDPOINT ?? 'http://localhost:4566';
export const STACK_NAME = process.env.STACK_NAME ?? 'Crawler-dev';

export async function connectTarget(): Promise<ConnectedTarget> {
  const kind = process.env.INTEGRATION_TARGET ?? 'sandbox';
  const region = process.env.AWS_REGION ?? 'us-east-1';
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
    return { kind, target, effectTimeoutMs: 180_000, stop: async () => {} };
  }
  if (kind === 'aws') {
    const target = makeTarget(
      'aws',
      await stackOutputs(STACK_NAME, region),
      {},
      { region, supportsMessageMoveTask: true },
    );
    return { kind, target, effectTimeoutMs: 300_000, stop: async () => {} };
  }
  if (kind !== 'sandbox')
    throw new Error(`INTEGRATION_TARGET must be sandbox, localstack or aws, not "${kind}"`);
  const { startSandbox } = await import('../../sandbox/sandbox');
  const sandbox = await startSandbox({ retryDelaySeconds: 1 });
  return { kind, target: sandbox.target, effectTimeoutMs: 60_000, stop: () => sandbox.stop() };
}
