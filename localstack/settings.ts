/**
 * Where the LocalStack deployment lives, for the commands that deploy to it and the suite that tests it.
 * One module, so `deploy:local`, `test:localstack` and the CLI agree on endpoint, stack, region and the
 * fixture site's address.
 */
export const LOCALSTACK_ENDPOINT = process.env.LOCALSTACK_ENDPOINT ?? 'http://localhost:4566';
export const STACK_NAME = process.env.STACK_NAME ?? 'Crawler-dev';
/** LocalStack's default account: every resource it creates belongs to it. */
export const LOCALSTACK_ACCOUNT = '000000000000';

/** The region every command of a run uses: AWS_REGION, else AWS_DEFAULT_REGION, else us-east-1. */
export function targetRegion(env: NodeJS.ProcessEnv = process.env): string {
  return env.AWS_REGION || env.AWS_DEFAULT_REGION || 'us-east-1';
}

/**
 * The fixture site's fixed address on the compose file's `crawler-fixture` network (see
 * docker-compose.yml). The deploy allows exactly this address and port, test-only.
 */
export const FIXTURE_ADDRESS = '172.28.0.10';
export const FIXTURE_PORT = 80;
export const LOCALSTACK_FIXTURE_URL = `http://${FIXTURE_ADDRESS}/`;
