// `porthole config check` output: the text table and the --json object.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { CONFIG_KEYS, configReportJson, formatConfigReport, loadConfig } from '../../src/config/index.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'porthole-check-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));
fs.writeFileSync(
  path.join(dir, 'porthole.toml'),
  '[gateway]\npublic_url = "https://desk.example.com"\nallowed_origins = ["https://a.example", "b.example"]\n',
);
const loaded = loadConfig({ home: dir, env: { PORTHOLE_PORT: '9000' }, flags: { host: '0.0.0.0' } });

/** The table row for `key`, split on runs of two or more spaces. */
function row(text: string, key: string): string[] {
  const line = text.split('\n').find((l) => l.startsWith(`${key} `));
  assert.ok(line, `no row for ${key}`);
  return line.split(/ {2,}/);
}

test('the text report has a row per key with value and source', () => {
  const text = formatConfigReport(loaded);
  assert.ok(text.includes(path.join(dir, 'porthole.toml')));
  assert.deepEqual(row(text, 'gateway.host'), ['gateway.host', '0.0.0.0', 'flag']);
  assert.deepEqual(row(text, 'gateway.port'), ['gateway.port', '9000', 'env']);
  assert.deepEqual(row(text, 'gateway.allowed_origins'), ['gateway.allowed_origins', 'https://a.example, b.example', 'file']);
  assert.deepEqual(row(text, 'gateway.target'), ['gateway.target', '-', 'default']);
  assert.deepEqual(row(text, 'gateway.trusted_proxies'), ['gateway.trusted_proxies', '-', 'default']);
  const exempt = row(text, 'auth.loopback_exempt');
  assert.equal(exempt[1], 'false');
  assert.ok(exempt[2]?.startsWith('default ('));
  assert.ok(exempt[2]?.includes('gateway.public_url'));
  for (const key of CONFIG_KEYS) row(text, key);
});

test('the text report says when no file was used', () => {
  const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'porthole-check-'));
  try {
    const text = formatConfigReport(loadConfig({ home: empty, env: {} }));
    assert.ok(text.split('\n')[0]?.includes('none'));
  } finally {
    fs.rmSync(empty, { recursive: true, force: true });
  }
});

test('the JSON report has every key with value, source and any note', () => {
  const json = configReportJson(loaded);
  assert.deepEqual(Object.keys(json.values), CONFIG_KEYS);
  assert.equal(json.file, path.join(dir, 'porthole.toml'));
  assert.deepEqual(json.values['gateway.host'], { value: '0.0.0.0', source: 'flag' });
  assert.deepEqual(json.values['gateway.port'], { value: 9000, source: 'env' });
  assert.deepEqual(json.values['gateway.allowed_origins'], { value: ['https://a.example', 'b.example'], source: 'file' });
  assert.deepEqual(json.values['gateway.target'], { value: null, source: 'default' });
  assert.equal(json.values['auth.loopback_exempt']?.value, false);
  assert.equal(json.values['auth.loopback_exempt']?.source, 'default');
  assert.ok(json.values['auth.loopback_exempt']?.note?.includes('gateway.public_url'));
  // It survives JSON unchanged (no undefined, no bigint).
  assert.deepEqual(JSON.parse(JSON.stringify(json)), json);
});

test('the JSON report has file null without a file', () => {
  const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'porthole-check-'));
  try {
    assert.equal(configReportJson(loadConfig({ home: empty, env: {} })).file, null);
  } finally {
    fs.rmSync(empty, { recursive: true, force: true });
  }
});
