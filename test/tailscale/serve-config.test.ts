// The rules porthole follows before it touches `tailscale serve`: its one mapping, never
// someone else's route, never publishing or un-publishing routes it did not make.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { mapArgs, UNMAP_ARGS } from '../../src/tailscale/exposure.js';
import { conflictFor, ourMapping, viewPort } from '../../src/tailscale/serve-config.js';

const DNS = 'desk.tail1234.ts.net';
const HP = `${DNS}:443`;
const MINE = 'http://127.0.0.1:41000';
const mine = new Set([MINE]);

function config(handlers: Record<string, object>, extra: Record<string, unknown> = {}) {
  return { TCP: { 443: { HTTPS: true } }, Web: { [HP]: { Handlers: handlers } }, ...extra };
}

describe('viewPort / ourMapping', () => {
  test('an empty config has no mapping and no conflict', () => {
    const v = viewPort({}, DNS);
    assert.equal(v.handlers.size, 0);
    assert.equal(ourMapping(v, mine), undefined);
    assert.equal(conflictFor(v, mine, 'serve'), undefined);
    assert.equal(conflictFor(v, mine, 'funnel'), undefined);
  });

  test('our "/" handler is recognised, with its funnel state', () => {
    const v = viewPort(config({ '/': { Proxy: MINE } }, { AllowFunnel: { [HP]: true } }), DNS);
    assert.deepEqual(ourMapping(v, mine), { target: MINE, funnel: true });
    assert.equal(ourMapping(v, new Set(['unix:/x.sock'])), undefined);
  });
});

describe('conflictFor', () => {
  const cases: [string, Record<string, unknown>, 'serve' | 'funnel', RegExp | undefined][] = [
    ['someone else proxies "/"', config({ '/': { Proxy: 'http://127.0.0.1:3000' } }), 'serve', /did not make \(proxy http:\/\/127\.0\.0\.1:3000\)/],
    ['a text handler on "/"', config({ '/': { Text: 'hi' } }), 'funnel', /did not make \(text\)/],
    ['our own "/" (re-map, switch mode)', config({ '/': { Proxy: MINE } }), 'funnel', undefined],
    ['other mounts, serve: they stay', config({ '/docs': { Text: 'd' } }), 'serve', undefined],
    ['other mounts, funnel: would publish them', config({ '/docs': { Text: 'd' } }), 'funnel', /also publish \/docs/],
    ['their Funnel on 443, serve: would turn it off', config({ '/docs': { Text: 'd' } }, { AllowFunnel: { [HP]: true } }), 'serve', /would turn it off/],
    ['a foreground serve holds 443', { Foreground: { 'emu-1': { TCP: { 443: { HTTPS: true } } } } }, 'serve', /foreground/],
    ['raw TCP on 443', { TCP: { 443: { TCPForward: '127.0.0.1:22' } } }, 'serve', /raw TCP/],
  ];
  for (const [name, sc, mode, want] of cases) {
    test(name, () => {
      const got = conflictFor(viewPort(sc, DNS), mine, mode);
      if (want === undefined) assert.equal(got, undefined);
      else assert.match(got ?? '', want);
    });
  }
});

test('porthole maps and unmaps exactly one mount; never `serve reset`', () => {
  assert.deepEqual(mapArgs('serve', MINE), ['serve', '--bg', '--https=443', '--set-path=/', MINE]);
  assert.deepEqual(mapArgs('funnel', MINE), ['funnel', '--bg', '--https=443', '--set-path=/', MINE]);
  assert.deepEqual(UNMAP_ARGS, ['serve', '--https=443', '--set-path=/', 'off']);
  assert.ok(!UNMAP_ARGS.includes('reset'));
});
