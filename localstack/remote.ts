import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import {
  FIXTURE_ADDRESS,
  FIXTURE_PORT,
  LOCALSTACK_ACCOUNT,
  LOCALSTACK_ENDPOINT,
  STACK_NAME,
  targetRegion,
} from './settings';

/**
 * Entry point for the paths CI cannot run (no Docker engine, no AWS account there):
 *   deploy-local     cdklocal bootstrap + deploy against LocalStack; fails (exit 1) when it cannot.
 *                    --no-bootstrap skips the bootstrap on a LocalStack that already has it
 *   test localstack  the portable integration suite against the LocalStack deployment
 *   test aws         the same suite against the stack deployed to the current AWS account
 * The two test commands say in one line when their target cannot be reached and exit 0 (a skipped run, so
 * they are safe in any pipeline); a deploy that did not happen is a failure.
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

async function awsReachable(region: string): Promise<string | undefined> {
  const sts = new STSClient({ region });
  try {
    const who = await sts.send(new GetCallerIdentityCommand({}));
    return who.Account;
  } catch {
    return undefined;
  } finally {
    sts.destroy();
  }
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv): number {
  const result = spawnSync(command, args, { cwd: ROOT, stdio: 'inherit', env });
  return result.status ?? 1;
}

/**
 * The environment for cdklocal and for the suite against LocalStack. cdklocal 3 refuses AWS_ENDPOINT_URL
 * without AWS_ENDPOINT_URL_S3, and deletes every AWS_* variable not in AWS_ENVAR_ALLOWLIST, the region
 * included; so both endpoints are set, and the region is allow-listed so the deploy lands where the
 * suite looks.
 */
export function localstackEnv(base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const region = targetRegion(base);
  const endpoint = new URL(LOCALSTACK_ENDPOINT);
  // Asset buckets are addressed virtual-host style, so S3 needs a name whose subdomains resolve to
  // LocalStack: LocalStack's public DNS name does (to 127.0.0.1), at the endpoint's port.
  const s3 =
    base.AWS_ENDPOINT_URL_S3 ||
    `${endpoint.protocol}//s3.localhost.localstack.cloud:${endpoint.port || 4566}`;
  const allow = new Set((base.AWS_ENVAR_ALLOWLIST ?? '').split(',').filter(Boolean));
  for (const key of ['AWS_REGION', 'AWS_DEFAULT_REGION', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY'])
    allow.add(key);
  return {
    ...base,
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: 'test',
    AWS_REGION: region,
    AWS_DEFAULT_REGION: region,
    AWS_ENDPOINT_URL: LOCALSTACK_ENDPOINT,
    AWS_ENDPOINT_URL_S3: s3,
    AWS_ENVAR_ALLOWLIST: [...allow].join(','),
  };
}

/** The cdklocal commands of `deploy:local`, in order. */
export function deployLocalCommands(region: string, bootstrap = true): string[][] {
  // Its own output folder, for both steps (bootstrap synthesizes the app too): cdk.out is the sandbox's, and
  // must never carry the test allow-list nor be rewritten while a sandbox reads it.
  const common = [
    '-c',
    'stage=dev',
    '-c',
    `testAllowTargets=${FIXTURE_ADDRESS}:${FIXTURE_PORT}`,
    '--output',
    LOCAL_OUT,
  ];
  // An explicit environment: bootstrap cannot pick another account or region.
  const steps = [['bootstrap', `aws://${LOCALSTACK_ACCOUNT}/${region}`, ...common]];
  const deploy = ['deploy', STACK_NAME, ...common, '--require-approval', 'never'];
  return [...(bootstrap ? steps : []), deploy];
}

/** The synth output of LocalStack deploys. */
export const LOCAL_OUT = 'cdk.out.localstack';

async function main(): Promise<number> {
  const [action, where] = process.argv.slice(2).filter((a) => !a.startsWith('--'));
  const noBootstrap = process.argv.includes('--no-bootstrap');
  const region = targetRegion();
  if (action === 'deploy-local') {
    if (!(await localstackReachable())) {
      console.error(
        `✖ not deployed: LocalStack is not reachable at ${LOCALSTACK_ENDPOINT}. Start it with \`npm run localstack:up\` (needs Docker), or set LOCALSTACK_ENDPOINT.`,
      );
      return 1;
    }
    const cdklocal = path.join(ROOT, 'node_modules', '.bin', 'cdklocal');
    const env = localstackEnv();
    console.log(`deploying ${STACK_NAME} to LocalStack at ${LOCALSTACK_ENDPOINT}, region ${region}`);
    for (const args of deployLocalCommands(region, !noBootstrap)) {
      const code = run(cdklocal, args, env);
      if (code !== 0) {
        console.error(`✖ cdklocal ${args[0]} failed (exit ${code}); see its output above.`);
        return code;
      }
    }
    return 0;
  }
  if (action === 'test' && where === 'localstack') {
    if (!(await localstackReachable())) {
      console.log(
        `skipped: LocalStack is not reachable at ${LOCALSTACK_ENDPOINT}. Start it with \`npm run localstack:up\` (needs Docker).`,
      );
      return 0;
    }
    return run('npx', ['vitest', 'run', 'test/integration/portable.test.ts'], {
      ...localstackEnv(),
      INTEGRATION_TARGET: 'localstack',
    });
  }
  if (action === 'test' && where === 'aws') {
    const account = await awsReachable(region);
    if (!account) {
      console.log(
        'skipped: no AWS credentials work here (sts:GetCallerIdentity failed). Configure a profile, then `npm run deploy` and run again.',
      );
      return 0;
    }
    console.log(`running the portable suite against ${STACK_NAME} in account ${account}, region ${region}`);
    return run('npx', ['vitest', 'run', 'test/integration/portable.test.ts'], {
      ...process.env,
      AWS_REGION: region,
      INTEGRATION_TARGET: 'aws',
    });
  }
  console.error('usage: tsx localstack/remote.ts deploy-local [--no-bootstrap] | test localstack | test aws');
  return 2;
}

// Run only as a command, so the contract test can import the environment rules.
if (process.argv[1] && path.resolve(process.argv[1]) === import.meta.filename) {
  main().then(
    (code) => process.exit(code),
    (error) => {
      console.error(`✖ ${(error as Error).message}`);
      process.exit(1);
    },
  );
}
