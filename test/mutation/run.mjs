#!/usr/bin/env node
// Runs Stryker on the pure modules. Stryker 10 needs Node >= 22; on an older Node this runs it on the
// registry's plain Node 24 binary (tooling/lambda-node.mjs, installed into .cache/ once). Arguments pass
// through to `stryker run`, e.g. --mutate functions/crawler/ssrf.ts.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { nodeOfMajor } from '../../tooling/lambda-node.mjs';

const root = path.join(import.meta.dirname, '..', '..');
const major = Number(process.versions.node.split('.')[0]);
let node = process.execPath;
if (major < 22) {
  const found = nodeOfMajor(24, {
    log: (line) => console.log(`mutation: Node ${process.version} is too old for Stryker; ${line}`),
  });
  if (!found.path) {
    console.error(
      `mutation: Stryker needs Node >= 22; this is Node ${process.version} (${found.why}). Install Node 22+ and rerun.`,
    );
    process.exit(2);
  }
  node = found.path;
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
