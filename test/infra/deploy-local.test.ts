import { execFile } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deployLocalCommands, localstackEnv } from '../../localstack/remote';

// The deploy path CI cannot run for real (no Docker): `npm run deploy:local` is run as a user runs it, with
// LocalStack replaced by a stub on loopback that records every request. cdklocal must get as far as its
// STS and CloudFormation calls, signed for the region the suite will read, with LocalStack's test
// credentials. The stub refuses the first CloudFormation call, so the command must also fail loudly.
const ROOT = path.join(import.meta.dirname, '..', '..');
const REGION = 'eu-west-3';

interface Recorded {
  readonly path: string;
  readonly authorization: string;
  readonly body: string;
}

const STS_IDENTITY =
  '<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult>' +
  '<Arn>arn:aws:iam::000000000000:root</Arn><UserId>000000000000</UserId><Account>000000000000</Account>' +
  '</GetCallerIdentityResult><ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></GetCallerIdentityResponse>';

/** An error in the query protocol (STS, CloudFormation), as the real services send it. */
const queryError = (code: string) =>
  `<ErrorResponse><Error><Type>Sender</Type><Code>${code}</Code><Message>refused by the contract stub</Message></Error><RequestId>1</RequestId></ErrorResponse>`;

const ASSUMED_ROLE =
  '<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult><Credentials>' +
  '<AccessKeyId>ASIASTUB</AccessKeyId><SecretAccessKey>stub</SecretAccessKey><SessionToken>stub</SessionToken>' +
  '<Expiration>2099-01-01T00:00:00Z</Expiration></Credentials><AssumedRoleUser><AssumedRoleId>AROA:stub</AssumedRoleId>' +
  '<Arn>arn:aws:sts::000000000000:assumed-role/deploy/stub</Arn></AssumedRoleUser></AssumeRoleResult>' +
  '<ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></AssumeRoleResponse>';

let stub: http.Server;
let endpoint: string;
const requests: Recorded[] = [];

beforeAll(async () => {
  stub = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => {
      body += c.toString();
    });
    req.on('end', () => {
      requests.push({ path: req.url ?? '', authorization: req.headers.authorization ?? '', body });
      if (req.url?.startsWith('/_localstack/health'))
        return void res.writeHead(200, { 'content-type': 'application/json' }).end('{"services":{}}');
      if (body.includes('Action=GetCallerIdentity'))
        return void res.writeHead(200, { 'content-type': 'text/xml' }).end(STS_IDENTITY);
      if (req.headers['x-amz-target'])
        return void res
          .writeHead(400, { 'content-type': 'application/x-amz-json-1.1' })
          .end('{"__type":"ValidationException","message":"refused by the contract stub"}');
      if (body.includes('Action=AssumeRole'))
        return void res.writeHead(200, { 'content-type': 'text/xml' }).end(ASSUMED_ROLE);
      res.writeHead(400, { 'content-type': 'text/xml' }).end(queryError('ValidationError'));
    });
  });
  await new Promise<void>((r) => stub.listen(0, '127.0.0.1', r));
  endpoint = `http://127.0.0.1:${(stub.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => stub.close(() => r())));

/** Run an npm script's command as a user would, with a clean AWS environment plus `env`. */
function runRemote(args: string[], env: Record<string, string>) {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('AWS_')));
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(
      path.join(ROOT, 'node_modules', '.bin', 'tsx'),
      ['localstack/remote.ts', ...args],
      { cwd: ROOT, env: { ...clean, CDK_DISABLE_VERSION_CHECK: '1', ...env }, timeout: 120_000 },
      (error, stdout, stderr) =>
        resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('deploy:local against a LocalStack stub', () => {
  it('reaches LocalStack’s STS and CloudFormation, signed for the suite’s region with test credentials, and fails loudly when refused', async () => {
    const sandboxOut = path.join(ROOT, 'cdk.out', 'Crawler-dev.template.json');
    const before = existsSync(sandboxOut) ? statSync(sandboxOut).mtimeMs : undefined;
    const { code, stdout, stderr } = await runRemote(['deploy-local'], {
      LOCALSTACK_ENDPOINT: endpoint,
      AWS_REGION: REGION,
    });
    expect(requests[0]?.path).toBe('/_localstack/health');
    const calls = requests.filter((r) => r.authorization);
    const sts = calls.filter((r) => r.body.includes('Action=GetCallerIdentity'));
    const cfn = calls.filter((r) => r.authorization.includes('/cloudformation/aws4_request'));
    expect(sts.length, stderr).toBeGreaterThan(0);
    expect(cfn.length, stderr).toBeGreaterThan(0);
    for (const r of calls) expect(r.authorization).toMatch(new RegExp(`Credential=test/\\d{8}/${REGION}/`));
    expect(cfn.some((r) => r.body.includes('StackName=CDKToolkit'))).toBe(true);
    expect(stdout).toContain(`region ${REGION}`);
    expect(code).not.toBe(0);
    expect(stderr).toContain('✖ cdklocal bootstrap failed');
    // It synthesized into its own folder: the sandbox's cdk.out (read by other suites right now) is untouched.
    expect(existsSync(sandboxOut) ? statSync(sandboxOut).mtimeMs : undefined).toBe(before);
  }, 120_000);

  it('deploys in the suite’s region: the deploy role, the asset upload and the bootstrap version are all asked for there', async () => {
    requests.length = 0;
    // S3 at the stub too: LocalStack's default S3 name needs public DNS, which would cost this test half a
    // minute of retries offline (the default itself is checked by the bootstrap case and below).
    const { code, stderr } = await runRemote(['deploy-local', '--no-bootstrap'], {
      LOCALSTACK_ENDPOINT: endpoint,
      AWS_ENDPOINT_URL_S3: endpoint,
      AWS_REGION: REGION,
    });
    const calls = requests.filter((r) => r.authorization);
    expect(calls.length, stderr).toBeGreaterThan(0);
    // Signed with LocalStack's test key, then with the role the stub let it assume: always in the region.
    for (const r of calls)
      expect(r.authorization).toMatch(new RegExp(`Credential=(test|ASIASTUB)/\\d{8}/${REGION}/`));
    expect(calls.some((r) => r.authorization.includes(`/${REGION}/s3/`))).toBe(true);
    // The deploy role it tries, and the bootstrap version it reads, are those of the suite's region.
    expect(calls.some((r) => decodeURIComponent(r.body).includes(`deploy-role-000000000000-${REGION}`))).toBe(
      true,
    );
    expect(calls.some((r) => r.body.includes('/cdk-bootstrap/'))).toBe(true);
    expect(code).not.toBe(0);
    expect(stderr).toContain('✖ cdklocal deploy failed');
  }, 120_000);

  it('exits non-zero with the fix when LocalStack is not running, while the test command skips with exit 0', async () => {
    const closed = 'http://127.0.0.1:9';
    const deploy = await runRemote(['deploy-local'], { LOCALSTACK_ENDPOINT: closed });
    expect(deploy.code).toBe(1);
    expect(deploy.stderr).toContain(`✖ not deployed: LocalStack is not reachable at ${closed}`);
    const test = await runRemote(['test', 'localstack'], { LOCALSTACK_ENDPOINT: closed });
    expect(test.code).toBe(0);
    expect(test.stdout).toContain('skipped: LocalStack is not reachable');
  }, 60_000);

  it('keeps the region through cdklocal’s variable filter and gives it both endpoints', () => {
    const env = localstackEnv({ AWS_DEFAULT_REGION: 'ap-south-1', AWS_ENVAR_ALLOWLIST: 'AWS_PROFILE' });
    expect(env.AWS_REGION).toBe('ap-south-1');
    expect(env.AWS_ENVAR_ALLOWLIST?.split(',')).toEqual(
      expect.arrayContaining(['AWS_PROFILE', 'AWS_REGION', 'AWS_DEFAULT_REGION']),
    );
    expect(env.AWS_ENDPOINT_URL).toBeDefined();
    expect(env.AWS_ENDPOINT_URL_S3).toMatch(/^http:\/\/s3\.localhost\.localstack\.cloud:\d+$/);
    expect(localstackEnv({ AWS_ENDPOINT_URL_S3: 'http://s3.example:1' }).AWS_ENDPOINT_URL_S3).toBe(
      'http://s3.example:1',
    );
  });

  it('bootstraps the LocalStack account in that region and deploys dev with the fixture site allowed', () => {
    expect(deployLocalCommands('eu-west-3', false).map((c) => c[0])).toEqual(['deploy']);
    for (const command of deployLocalCommands('eu-west-3'))
      expect(command.join(' '), command[0]).toContain('--output cdk.out.localstack');
    const [bootstrap, deploy] = deployLocalCommands('eu-west-3');
    expect(bootstrap?.slice(0, 2)).toEqual(['bootstrap', 'aws://000000000000/eu-west-3']);
    expect(deploy).toEqual(
      expect.arrayContaining(['deploy', 'stage=dev', 'testAllowTargets=172.28.0.10:80', 'never']),
    );
  });
});
