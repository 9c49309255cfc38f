#!/usr/bin/env node
// Fails when src/api/schema.ts is not what openapi-typescript generates from docs/openapi.json
// today: the API changed and `npm run gen:api` was not run (or the file was edited by hand).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const webDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const committed = join(webDir, 'src', 'api', 'schema.ts');
const dir = mkdtempSync(join(tmpdir(), 'entryguard-api-types-'));
try {
  const fresh = join(dir, 'schema.ts');
  execFileSync(join(webDir, 'node_modules', '.bin', 'openapi-typescript'), [join(webDir, '..', 'docs', 'openapi.json'), '-o', fresh], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  if (readFileSync(fresh, 'utf8') !== readFileSync(committed, 'utf8')) {
    try {
      execFileSync('diff', ['-u', committed, fresh], { stdio: 'inherit' });
    } catch {
      /* diff exits 1 on a difference: the output above is the point */
    }
    console.error('\nsrc/api/schema.ts is out of date with docs/openapi.json: run `npm run gen:api` and commit the result.');
    process.exit(1);
  }
  console.log('src/api/schema.ts matches docs/openapi.json');
} finally {
  rmSync(dir, { recursive: true, force: true });
}
