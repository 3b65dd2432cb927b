import { mkdirSync, mkdtempSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { staleReason } from '../../sandbox/sandbox';

describe('the sandbox reuses cdk.out only when it is newer than its sources', () => {
  it('says which file made it stale, and reuses it once the synth is newer', () => {
    const root = mkdtempSync(path.join(os.tmpdir(), 'stale-'));
    expect(staleReason('S', root)).toBe('cdk.out has no S template yet');
    mkdirSync(path.join(root, 'cdk.out'));
    mkdirSync(path.join(root, 'functions', 'parser'), { recursive: true });
    const template = path.join(root, 'cdk.out', 'S.template.json');
    const handler = path.join(root, 'functions', 'parser', 'links.ts');
    writeFileSync(template, '{}');
    writeFileSync(handler, '');
    const t = Date.now() / 1000;
    utimesSync(template, t - 60, t - 60);
    utimesSync(handler, t, t);
    expect(staleReason('S', root)).toBe(
      `${path.join('functions', 'parser', 'links.ts')} changed after the last synth`,
    );
    utimesSync(template, t + 1, t + 1);
    expect(staleReason('S', root)).toBeUndefined();
    // cdk.json counts too: the feature flags change the template.
    writeFileSync(path.join(root, 'cdk.json'), '{}');
    utimesSync(path.join(root, 'cdk.json'), t + 5, t + 5);
    expect(staleReason('S', root)).toBe('cdk.json changed after the last synth');
  });
});
