// Every error code porthole can report is documented in docs/errors.md, and every code
// documented there exists: the table is the contract callers match on.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { ERROR_CODES } from '../src/errors.js';

const doc = readFileSync(new URL('../docs/errors.md', import.meta.url), 'utf8');

test('every ErrorCode has a row in docs/errors.md', () => {
  const missing = Object.keys(ERROR_CODES).filter((c) => !doc.includes(`| \`${c}\` |`));
  assert.deepEqual(missing, []);
});

test('docs/errors.md lists no code that does not exist', () => {
  const documented = [...doc.matchAll(/^\| `([A-Z_]+)` \|/gm)].map((m) => m[1]);
  const unknown = documented.filter((c) => !(c! in ERROR_CODES));
  assert.deepEqual(unknown, []);
});

test('HTTP statuses in docs/errors.md match the code table', () => {
  for (const m of doc.matchAll(/^\| `([A-Z_]+)` \| (\d{3}) \|/gm)) {
    assert.equal(ERROR_CODES[m[1] as keyof typeof ERROR_CODES], Number(m[2]), m[1]);
  }
});
