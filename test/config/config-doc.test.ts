// docs/config.md documents every key porthole.toml may hold: a key added to the schema's
// field table without a row in the docs fails here (like test/errors-doc.test.ts for codes).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { CONFIG_KEYS } from '../../src/config/schema.js';

const doc = readFileSync(new URL('../../docs/config.md', import.meta.url), 'utf8');

test('every config key has a row in docs/config.md', () => {
  const missing = CONFIG_KEYS.filter((key) => {
    const leaf = key.split('.').pop()!;
    return !new RegExp(`^\\|\\s*\`${leaf}\`\\s*\\|`, 'm').test(doc);
  });
  assert.deepEqual(missing, [], `document these keys in docs/config.md: ${missing.join(', ')}`);
});
