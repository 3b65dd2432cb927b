#!/usr/bin/env node
// Runs the adversarial suite inside a fresh network namespace where only loopback exists, so an SSRF bypass
// can never reach a real address. Inside it, the "forbidden" addresses (metadata, private ranges) are
// added to loopback with canary servers listening on them: a bypass is then a recorded connection, not a
// silent success.
//
// Usage: node test/adversarial/isolate.mjs [vitest args]. CI requires the namespace; elsewhere, without
// root or user namespaces, the suite runs with the in-process connection guard alone and says so.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';

const root = path.join(import.meta.dirname, '..', '..');
const vitestArgs = [
  'vitest',
  'run',
  '--config',
  'test/adversarial/vitest.config.ts',
  ...process.argv.slice(2),
];

/** Addresses a bypass would aim at; each gets a canary listener inside the namespace (crawler.test.ts). */
const canaries = JSON.parse(readFileSync(path.join(import.meta.dirname, 'canaries.json'), 'utf8'));

function run(cmd, args, opts = {}) {
  return spawnSync(cmd, args, { stdio: 'inherit', cwd: root, ...opts });
}

if (process.env.ADVERSARIAL_INSIDE === '1') {
  // Inside the namespace: bring up loopback and give it the canary addresses.
  const ip = (...a) => spawnSync('ip', a, { encoding: 'utf8' });
  const up = ip('link', 'set', 'lo', 'up');
  if (up.status !== 0) {
    console.error(`adversarial: cannot bring up loopback in the namespace: ${up.stderr}`);
    process.exit(1);
  }
  for (const a of canaries.v4) ip('addr', 'add', `${a}/32`, 'dev', 'lo');
  for (const a of canaries.v6) ip('-6', 'addr', 'add', `${a}/128`, 'dev', 'lo', 'nodad');
  const result = run('npx', vitestArgs, { env: { ...process.env, ADVERSARIAL_ISOLATED: '1' } });
  process.exit(result.status ?? 1);
}

const self = path.join(import.meta.dirname, 'isolate.mjs');
const env = { ...process.env, ADVERSARIAL_INSIDE: '1' };
const haveIp = spawnSync('ip', ['-V'], { encoding: 'utf8' }).status === 0;
const attempts =
  process.getuid?.() === 0 ? [['--net'], ['--net', '--map-root-user']] : [['--net', '--map-root-user']];
if (haveIp) {
  for (const flags of attempts) {
    const probe = spawnSync('unshare', [...flags, 'true'], { encoding: 'utf8' });
    if (probe.status !== 0) continue;
    const result = run('unshare', [...flags, process.execPath, self, ...process.argv.slice(2)], { env });
    process.exit(result.status ?? 1);
  }
}
const why = haveIp ? 'unshare --net is not permitted here' : "the 'ip' command (iproute2) is missing";
if (process.env.CI) {
  console.error(`adversarial: ${why}; CI runs this suite only inside a network namespace`);
  process.exit(1);
}
console.log(`adversarial: ${why}; running with the in-process connection guard only (no namespace)`);
process.exit(run('npx', vitestArgs).status ?? 1);
