import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FIXTURE_ADDRESS, FIXTURE_PORT, LOCALSTACK_FIXTURE_URL } from '../../localstack/settings';

// The LocalStack files cannot be run here (no Docker engine), so what ties them together is checked as text:
// the compose file, the deploy's allow-list and the suite must name the same network and address.
const DIR = path.join(import.meta.dirname, '..', '..', 'localstack');
const compose = readFileSync(path.join(DIR, 'docker-compose.yml'), 'utf8');
const setting = (name: string) => new RegExp(`^\\s+${name}:\\s*"?([^"\\n]+)"?$`, 'm').exec(compose)?.[1];

describe('the LocalStack compose file', () => {
  it('puts LocalStack’s function containers on the fixture site’s network, at the address the deploy allows', () => {
    const network = setting('LAMBDA_DOCKER_NETWORK');
    expect(network).toBe('crawler-fixture');
    expect(compose).toMatch(new RegExp(`^\\s+name: ${network}$`, 'm'));
    expect(setting('ipv4_address')).toBe(FIXTURE_ADDRESS);
    expect(FIXTURE_PORT).toBe(80); // nginx's port in the fixture-site service
    expect(LOCALSTACK_FIXTURE_URL).toBe(`http://${FIXTURE_ADDRESS}/`);
    const subnet = setting('- subnet') ?? '';
    expect(FIXTURE_ADDRESS.startsWith(subnet.replace(/0\/24$/, ''))).toBe(true);
  });

  it('runs functions in the host’s architecture, serves KMS for table encryption, and sets no obsolete executor', () => {
    expect(setting('LAMBDA_IGNORE_ARCHITECTURE')).toBe('1');
    expect(setting('SERVICES')?.split(',')).toEqual(
      expect.arrayContaining(['sqs', 'lambda', 'dynamodb', 's3', 'cloudformation', 'kms', 'sts', 'ssm']),
    );
    expect(setting('LAMBDA_EXECUTOR')).toBeUndefined();
  });

  it('says how to get the compose plugin instead of docker’s own error when it is missing', () => {
    // A PATH with no docker at all: the first check answers.
    const run = spawnSync(process.execPath, [path.join(DIR, 'compose.mjs'), 'up'], {
      encoding: 'utf8',
      env: { PATH: '/nonexistent' },
    });
    expect(run.status).toBe(1);
    expect(run.stderr).toContain('✖ docker is not installed');
    const usage = spawnSync(process.execPath, [path.join(DIR, 'compose.mjs'), 'sideways'], {
      encoding: 'utf8',
    });
    expect(usage.status).toBe(2);
  });
});
