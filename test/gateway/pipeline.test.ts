// Tests for isPublicPath in src/gateway/pipeline.ts: `[auth] public_paths` (webhooks) match
// at a segment boundary, and a path the app might normalise elsewhere is never public.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isPublicPath } from '../../src/gateway/pipeline.js';

test('isPublicPath: prefixes match whole segments', () => {
  const prefixes = ['/hooks', '/api/webhooks/', '/status.json'];
  const cases: [string, boolean][] = [
    ['/hooks', true],
    ['/hooks/', true],
    ['/hooks/github', true],
    ['/hooks/github/push', true],
    ['/hooks//double', true],
    ['/hooksX', false], // not a segment boundary
    ['/hooks-admin', false],
    ['/hooks.json', false],
    ['/Hooks', false], // case-sensitive: refusing is the safe side
    ['/', false],
    ['', false],
    ['/admin', false],
    ['/x/hooks', false],
    ['//hooks', false],
    ['/api/webhooks/', true],
    ['/api/webhooks/stripe', true],
    ['/api/webhooks', false], // the prefix was given with its slash
    ['/api/webhooksX', false],
    ['/status.json', true],
    ['/status.json/x', true],
    ['/status.jsonp', false],
  ];
  for (const [path, want] of cases) assert.equal(isPublicPath(path, prefixes), want, path);
});

test('isPublicPath: no prefixes, nothing public', () => {
  for (const path of ['/', '/hooks', '/_porthole/health']) assert.equal(isPublicPath(path, []), false, path);
});

test('isPublicPath: dot segments and encoded separators are never public', () => {
  const prefixes = ['/hooks', '/'];
  const paths = [
    '/hooks/../admin',
    '/hooks/..',
    '/hooks/./x',
    '/hooks/.',
    '/hooks/x/../../admin',
    '/./hooks/x',
    '/../hooks',
    '/hooks/%2e%2e/admin',
    '/hooks/%252e%252e/admin', // decoded twice by some apps
    '/hooks/%2E%2E/admin',
    '/hooks/.%2e/admin',
    '/hooks/%2e./admin',
    '/hooks/%2e',
    '/hooks%2f..%2fadmin',
    '/hooks/x%2F..%2Fadmin',
    '/hooks/..%5cadmin',
    '/hooks/..%5Cadmin',
    '/hooks\\..\\admin',
    '/hooks/x\\y',
  ];
  for (const path of paths) assert.equal(isPublicPath(path, prefixes), false, path);
  // Dots inside a segment are ordinary characters.
  for (const path of ['/hooks/v1.2', '/hooks/.well-known', '/hooks/...', '/hooks/a..b']) {
    assert.equal(isPublicPath(path, ['/hooks']), true, path);
  }
});

test('isPublicPath: path-parameter dot segments are never public', {
}, () => {
  assert.equal(isPublicPath('/hooks/..;/admin', ['/hooks']), false);
  assert.equal(isPublicPath('/hooks/.;/x', ['/hooks']), false);
});
