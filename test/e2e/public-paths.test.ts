// [auth] public_paths: webhook routes that need no credential — exactly those prefixes, at a
// segment boundary, never with dot segments, and never porthole's own API.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { type Served, startCli, tempHome } from '../helpers/cli.js';
import { type EchoApp, startEchoApp } from '../helpers/echo-app.js';
import { send } from '../helpers/http.js';

let app: EchoApp;
let g: Served;
const h = tempHome();

before(async () => {
  app = await startEchoApp();
  writeFileSync(join(h.home, 'porthole.toml'), '[auth]\nloopback_exempt = false\npublic_paths = ["/hooks"]\n');
  g = await startCli(['serve', '--target', app.url, '--port', '0', '--json'], { PORTHOLE_HOME: h.home });
});
after(async () => {
  await g.stop();
  await app.close();
  h.cleanup();
});

test('a public prefix and what is under it need no credential; the app sees an anonymous identity', async () => {
  for (const path of ['/hooks', '/hooks/github?x=1']) {
    const r = await send(g.event.port, path, { method: 'POST', body: '{}' });
    assert.equal(r.status, 200, path);
    const seen = r.json as { headers: Record<string, string> };
    assert.ok(seen.headers['x-porthole-identity'], path);
    assert.match(seen.headers['x-porthole-identity'] ?? '', /sub=anonymous; cred=public; scope=none/);
  }
});

test('near misses, dot segments and porthole endpoints still need a credential', async () => {
  for (const path of ['/hooksX', '/hook', '/hooks/../admin', '/hooks/%2e%2e/admin', '/hooks;/x', '/_porthole/api/status']) {
    const r = await send(g.event.port, path);
    assert.equal(r.status, 401, path);
    assert.equal(r.code, 'AUTH_REQUIRED', path);
  }
});
