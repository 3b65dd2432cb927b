import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(__dirname, '../..');
const DOCS = ['README.md', ...readdirSync(path.join(ROOT, 'docs')).map((f) => `docs/${f}`)].filter((f) =>
  f.endsWith('.md'),
);

/** Every file under `dir`, relative to the repository root. */
function filesUnder(dir: string): string[] {
  return readdirSync(path.join(ROOT, dir), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile())
    .map((e) => path.relative(ROOT, path.join(e.parentPath, e.name)));
}
const testFiles = new Set(filesUnder('test').map((f) => path.basename(f)));

/** The backticked file names a document points readers to: source paths, and test files by name. */
function references(doc: string): string[] {
  const text = readFileSync(path.join(ROOT, doc), 'utf8');
  const found = new Set<string>();
  for (const [, token] of text.matchAll(/`([\w@./-]+\.(?:ts|mts|mjs|json|sql|md))`/g)) {
    // cdk.out is synth's output, not a source file: it exists only after `npm run synth`.
    if (
      token &&
      !token.includes('*') &&
      !token.startsWith('.') &&
      !token.includes('<') &&
      !token.startsWith('cdk.out')
    )
      found.add(token);
  }
  return [...found];
}

describe('the docs point at files that exist', () => {
  it('finds the references it checks (a broken pattern would check nothing)', () => {
    expect(DOCS.flatMap(references).length).toBeGreaterThan(100);
  });

  for (const doc of DOCS) {
    it(doc, () => {
      const missing = references(doc).filter((ref) =>
        ref.includes('/')
          ? !existsSync(path.join(ROOT, ref))
          : ref.endsWith('.test.ts') && !testFiles.has(ref),
      );
      expect(missing).toEqual([]);
    });
  }
});
