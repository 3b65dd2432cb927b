import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/**
 * Where a running sandbox (`npm start -- --keep`) records itself, so the CLI in another terminal can reach
 * it; overridable so tests can point the CLI at their own sandbox.
 */
export const sandboxFile = (): string =>
  process.env.CRAWLER_SANDBOX_TARGET ?? path.join(import.meta.dirname, '..', '.sandbox', 'target.json');

export interface SandboxFile {
  readonly stackName: string;
  readonly outputs: Record<string, string>;
  readonly endpoints: { sqs: string; dynamodb: string; s3: string };
  readonly region: string;
  readonly pid: number;
}

export function writeSandboxFile(file: SandboxFile): void {
  writeFileSync(sandboxFile(), JSON.stringify(file, null, 2));
}

export function removeSandboxFile(): void {
  rmSync(sandboxFile(), { force: true });
}

/** The running sandbox's record, or undefined when none is running (a record left by a dead process is ignored). */
export function runningSandbox(): SandboxFile | undefined {
  const file = sandboxFile();
  if (!existsSync(file)) return undefined;
  const record = JSON.parse(readFileSync(file, 'utf8')) as SandboxFile;
  try {
    process.kill(record.pid, 0);
    return record;
  } catch {
    return undefined;
  }
}
