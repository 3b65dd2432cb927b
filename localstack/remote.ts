import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { LOCALSTACK_ENDPOINT, STACK_NAME } from '../test/integration/target';

/**
 * Entry point for the paths CI cannot run (no Docker engine, no AWS account there):
 *   deploy-local     cdklocal bootstrap + deploy against LocalStack
 *   test localstack  the portable integration suite against the LocalStack deployment
 *   test aws         the same suite against the stack deployed to the current AWS account
 * Each checks its endpoint first and, when it cannot be reached, says so in one line and exits 0
 * (a skipped run, not a failure), so the command is safe in any pipeline.
 */
const ROOT = path.join(import.meta.dirname, '..');

async function localstackReachable(): Promise<boolean> {
  try {
    const res = await fetch(`${LOCALSTACK_ENDPOINT}/_localstack/health`, {
      signal: AbortSignal.timeout(3_000),
    });
    return res.ok;
  } catch {
    return false;
  }
}

async function awsReachable(): Promise<string | undefined> {
  const sts = new STSClient({ region: process.env.AWS_REGION ?? 'us-east-1' });
  try {
    const who = await sts.send(new GetCallerIdentityCommand({}));
    return who.Account;
  } catch {
    return undefined;
  } finally {
    sts.destroy();
  }
}

function run(command: string, args: string[], env: Record<string, string> = {}): number {
  const result = spawnSync(command, args, { cwd: ROOT, stdio: 'inherit', env: { ...process.env, ...env } });
  return result.status ?? 1;
}

async function main(): Promise<number> {
  const [action, where] = process.argv.slice(2);
  const localEnv = {
    AWS_ACCESS_KEY_ID: process.env.AWS_ACCESS_KEY_ID ?? 'test',
    AWS_SECRET_ACCESS_KEY: process.env.AWS_SECRET_ACCESS_KEY ?? 'test',
    AWS_DEFAULT_REGION: process.env.AWS_REGION ?? 'us-east-1',
    AWS_ENDPOINT_URL: LOCALSTACK_ENDPOINT,
  };
  if (action === 'deploy-local' || (action === 'test' && where === 'localstack')) {
    if (!(await localstackReachable())) {
      console.log(
        `skipped: LocalStack is not reachable at ${LOCALSTACK_ENDPOINT}. Start it with \`npm run localstack:up\` (needs Docker).`,
      );
      return 0;
    }
    if (action === 'deploy-local') {
      const cdklocal = path.join(ROOT, 'node_modules', '.bin', 'cdklocal');
      const code = run(cdklocal, ['bootstrap', '-c', 'stage=dev'], localEnv);
      return code !== 0
        ? code
        : run(cdklocal, ['deploy', STACK_NAME, '-c', 'stage=dev', '--require-approval', 'never'], localEnv);
    }
    return run('npx', ['vitest', 'run', 'test/integration/portable.test.ts'], {
      ...localEnv,
      INTEGRATION_TARGET: 'localstack',
    });
  }
  if (action === 'test' && where === 'aws') {
    const account = await awsReachable();
    if (!account) {
      console.log(
        'skipped: no AWS credentials work here (sts:GetCallerIdentity failed). Configure a profile, then `npm run deploy` and run again.',
      );
      return 0;
    }
    console.log(`running the portable suite against ${STACK_NAME} in account ${account}`);
    return run('npx', ['vitest', 'run', 'test/integration/portable.test.ts'], { INTEGRATION_TARGET: 'aws' });
  }
  console.error('usage: tsx localstack/remote.ts deploy-local | test localstack | test aws');
  return 2;
}

main().then(
  (code) => process.exit(code),
  (error) => {
    console.error(`✖ ${(error as Error).message}`);
    process.exit(1);
  },
);
