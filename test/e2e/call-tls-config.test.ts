// `[gateway] tls`, `tls_cert`, `tls_key` and `[remote] tls_pin` as config keys: which of
// the file and the flags wins (flag > env > file > state > default, with the cert/key files
// beating `tls` from the same or a lower layer), contradictions refused, pins validated.
// Real files in a temp home; loadConfig and the same resolution `porthole serve` uses.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadConfig } from '../../src/config/load.js';
import type { ConfigFlags } from '../../src/config/types.js';
import { isPortholeError } from '../../src/errors.js';
import { tlsChoiceFromConfig } from '../../src/tls/gateway-cert.js';
import { tempHome } from '../helpers/cli.js';
import { defer } from '../helpers/e2e.js';

function load(t: Parameters<typeof defer>[0], toml: string, flags: ConfigFlags = {}) {
  const h = tempHome();
  defer(t, () => h.cleanup());
  writeFileSync(join(h.home, 'porthole.toml'), `version = 1\n${toml}`);
  return { home: h.home, loaded: () => loadConfig({ home: h.home, env: {}, flags }) };
}

function problemOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(isPortholeError(err), String(err));
    assert.equal(err.code, 'CONFIG_INVALID');
    return [err.message, ...(err.details ?? [])].join('\n');
  }
  assert.fail('expected CONFIG_INVALID');
}

describe('gateway TLS config keys', () => {
  it('defaults to off; tls = "self-signed" from the file; --tls off wins over it', (t) => {
    const none = load(t, '').loaded();
    assert.deepEqual(tlsChoiceFromConfig(none.config.gateway, none.sources), { mode: 'off' });
    const file = load(t, '[gateway]\ntls = "self-signed"\n').loaded();
    assert.equal(file.sources['gateway.tls'], 'file');
    assert.deepEqual(tlsChoiceFromConfig(file.config.gateway, file.sources), { mode: 'self-signed' });
    const flagged = load(t, '[gateway]\ntls = "self-signed"\n', { tls: 'off' }).loaded();
    assert.equal(flagged.sources['gateway.tls'], 'flag');
    assert.deepEqual(tlsChoiceFromConfig(flagged.config.gateway, flagged.sources), { mode: 'off' });
  });

  it('tls_cert/tls_key resolve against the file; --tls off disables them, --tls-cert/--tls-key beat a file tls', (t) => {
    const files = load(t, '[gateway]\ntls_cert = "cert.pem"\ntls_key = "key.pem"\n');
    const l = files.loaded();
    assert.deepEqual(tlsChoiceFromConfig(l.config.gateway, l.sources), { mode: 'files', certFile: join(files.home, 'cert.pem'), keyFile: join(files.home, 'key.pem') });
    const off = load(t, '[gateway]\ntls_cert = "cert.pem"\ntls_key = "key.pem"\n', { tls: 'off' }).loaded();
    assert.deepEqual(tlsChoiceFromConfig(off.config.gateway, off.sources), { mode: 'off' });
    const over = load(t, '[gateway]\ntls = "self-signed"\n', { tlsCert: '/x/c.pem', tlsKey: '/x/k.pem' }).loaded();
    assert.deepEqual(tlsChoiceFromConfig(over.config.gateway, over.sources), { mode: 'files', certFile: '/x/c.pem', keyFile: '/x/k.pem' });
  });

  it('refuses half a pair, tls and files from the same layer, and unknown modes', (t) => {
    assert.match(problemOf(load(t, '[gateway]\ntls_cert = "c.pem"\n').loaded), /gateway\.tls_cert and gateway\.tls_key go together/);
    assert.match(problemOf(load(t, '[gateway]\ntls = "self-signed"\ntls_cert = "c.pem"\ntls_key = "k.pem"\n').loaded), /contradicts/);
    assert.match(problemOf(load(t, '', { tls: 'self-signed', tlsCert: 'c.pem', tlsKey: 'k.pem' }).loaded), /contradicts/);
    assert.match(problemOf(load(t, '[gateway]\ntls = "on"\n').loaded), /gateway\.tls/);
  });

  it('remote.tls_pin accepts the two pin forms and refuses anything else', (t) => {
    const spki = `sha256/${Buffer.alloc(32, 1).toString('base64')}`;
    const hex = Buffer.alloc(32, 2).toString('hex').toUpperCase().match(/../g)!.join(':');
    for (const pin of [spki, hex]) {
      const l = load(t, `[remote]\ntls_pin = "${pin}"\n`).loaded();
      assert.equal(l.config.remote.tls_pin, pin);
    }
    for (const pin of ['sha1/abc', 'sha256/short=', 'AA:BB']) {
      assert.match(problemOf(load(t, `[remote]\ntls_pin = "${pin}"\n`).loaded), /remote\.tls_pin/);
    }
  });
});
