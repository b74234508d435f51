// Tests for src/auth/credentials.ts: finding porthole's credential in a request (only its
// own, recognised by prefix — the app's bearer tokens and OAuth parameters are not
// porthole's) and removing it before the request reaches the app (DESIGN §3.3, §3.5).
import assert from 'node:assert/strict';
import type { IncomingHttpHeaders } from 'node:http';
import { test } from 'node:test';
import {
  portholeBearer,
  queryCredential,
  readCookie,
  sessionCookieName,
  stripCookie,
  stripPortholeParams,
} from '../../src/auth/credentials.js';
import { generateCode, generateToken } from '../../src/secrets/token.js';

const TOKEN = generateToken();
const CODE = generateCode();

test('sessionCookieName carries the gateway id; __Host- on https', () => {
  assert.equal(sessionCookieName('abc123', false), 'porthole_session_abc123');
  assert.equal(sessionCookieName('abc123', true), '__Host-porthole_session_abc123');
});

test("portholeBearer: only a ph_ bearer is porthole's", () => {
  const cases: [string | undefined, string | undefined][] = [
    [undefined, undefined],
    ['', undefined],
    [`Bearer ${TOKEN}`, TOKEN],
    [`bearer ${TOKEN}`, TOKEN], // scheme is case-insensitive (RFC 9110 §11.1)
    [`BEARER ${TOKEN}`, TOKEN],
    [`BeArEr ${TOKEN}`, TOKEN],
    [`Bearer   ${TOKEN}  `, TOKEN],
    ['Bearer ph_x', 'ph_x'], // porthole's by prefix, even if wrong: it counts as a failure
    // the app's own bearer tokens pass through untouched
    ['Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig', undefined],
    ['Bearer sk-live-123', undefined],
    ['Bearer PH_abc', undefined],
    ['Bearer xph_abc', undefined],
    [`Bearer ${CODE}`, undefined], // a code is not a bearer token
    // other schemes
    [`Basic ${Buffer.from(`user:${TOKEN}`).toString('base64')}`, undefined],
    [`Token ${TOKEN}`, undefined],
    [`Bearer${TOKEN}`, undefined],
    [TOKEN, undefined],
    ['Bearer ', undefined],
    ['Bearer', undefined],
  ];
  for (const [authorization, want] of cases) {
    const headers: IncomingHttpHeaders = authorization === undefined ? {} : { authorization };
    assert.equal(portholeBearer(headers), want, `Authorization: ${authorization}`);
  }
});

test('readCookie: one cookie by exact name, raw value', () => {
  const h = (cookie?: string): IncomingHttpHeaders => (cookie === undefined ? {} : { cookie });
  const name = 'porthole_session_abc';
  const cases: [string | undefined, string | undefined][] = [
    [undefined, undefined],
    ['', undefined],
    [`${name}=s1`, 's1'],
    [`a=1; ${name}=s1; b=2`, 's1'],
    [`a=1;${name}=s1;b=2`, 's1'],
    [`  ${name} = s1 `, 's1'],
    [`${name}=`, ''],
    [`${name}=a=b`, 'a=b'], // '=' inside a value
    [`${name}=%41%20`, '%41%20'], // not decoded
    [`${name}=first; ${name}=second`, 'first'],
    [`x${name}=s1`, undefined],
    [`${name}x=s1`, undefined],
    [`PORTHOLE_SESSION_ABC=s1`, undefined], // names are case-sensitive
    [`${name}`, undefined], // no '='
    ['a=1; b=2', undefined],
  ];
  for (const [cookie, want] of cases) assert.equal(readCookie(h(cookie), name), want, `Cookie: ${cookie}`);
  assert.equal(readCookie({ cookie: `__Host-${name}=s2; ${name}=s1` }, `__Host-${name}`), 's2');
});

test('queryCredential: codes before tokens; prefix-less values belong to the app', () => {
  const q = (s: string) => queryCredential(new URLSearchParams(s));
  const cases: [string, ReturnType<typeof queryCredential>][] = [
    ['', undefined],
    ['a=1&b=2', undefined],
    [`token=${TOKEN}`, { kind: 'query-token', secret: TOKEN }],
    [`code=${CODE}`, { kind: 'query-code', secret: CODE }],
    [`token=${TOKEN}&code=${CODE}`, { kind: 'query-code', secret: CODE }],
    [`code=${CODE}&token=${TOKEN}`, { kind: 'query-code', secret: CODE }],
    // the app's own parameters: an API token, an OAuth callback code
    ['token=abc', undefined],
    ['code=4/0AfJohXabc', undefined],
    [`token=abc&token=${TOKEN}`, { kind: 'query-token', secret: TOKEN }],
    [`code=oauth123&code=${CODE}`, { kind: 'query-code', secret: CODE }],
    [`code=oauth123&token=${TOKEN}`, { kind: 'query-token', secret: TOKEN }],
    // a code in the token parameter is not a token, a token in the code parameter not a code
    [`token=${CODE}`, undefined],
    [`code=${TOKEN}`, undefined],
    // percent-encoded values are decoded by URLSearchParams
    [`token=${encodeURIComponent(TOKEN).replace('ph_', 'ph%5F')}`, { kind: 'query-token', secret: TOKEN }],
    // other names and cases are the app's
    [`Token=${TOKEN}`, undefined],
    [`access_token=${TOKEN}`, undefined],
  ];
  for (const [query, want] of cases) assert.deepEqual(q(query), want, `?${query}`);
});

test("stripPortholeParams: removes porthole's parameters, keeps everything else in order", () => {
  const cases: [string, string][] = [
    ['/', '/'],
    ['/path', '/path'],
    ['/path?', '/path?'], // nothing of porthole's: unchanged
    [`/?token=${TOKEN}`, '/'],
    [`/app?token=${TOKEN}`, '/app'],
    [`/app?code=${CODE}`, '/app'],
    [`/app?a=1&token=${TOKEN}&b=2`, '/app?a=1&b=2'],
    [`/app?code=${CODE}&a=1&token=${TOKEN}`, '/app?a=1'],
    // the app's own token/code values stay, in place, exactly as written
    [`/cb?code=oauth123&state=xyz&token=${TOKEN}`, '/cb?code=oauth123&state=xyz'],
    [`/api?token=abc&code=def&x=y`, '/api?token=abc&code=def&x=y'],
    [`/api?token=app%2Btok&token=${TOKEN}&token=zzz`, '/api?token=app%2Btok&token=zzz'],
    [`/api?q=a+b&q=c%20d&token=${TOKEN}&empty=&flag`, '/api?q=a+b&q=c%20d&empty=&flag'],
    // encoded porthole values are porthole's too
    [`/x?token=${TOKEN.replace('ph_', 'ph%5F')}&a=1`, '/x?a=1'],
    [`/x?code=${CODE.replace('phc_', '%70%68%63%5F')}&a=1`, '/x?a=1'],
    // bare names and other names untouched
    ['/x?token&code', '/x?token&code'],
    [`/x?mytoken=${TOKEN}`, `/x?mytoken=${TOKEN}`],
    [`/x?Token=${TOKEN}`, `/x?Token=${TOKEN}`],
    // a malformed escape elsewhere does not break anything
    [`/x?a=%ZZ&token=${TOKEN}`, '/x?a=%ZZ'],
  ];
  for (const [target, want] of cases) assert.equal(stripPortholeParams(target), want, target);
});

test('stripPortholeParams removes whatever queryCredential recognises', {
}, () => {
  const targets = [`/x?tok%65n=${TOKEN}&a=1`, `/x?%63ode=${CODE}&a=1`, `/x?token=${TOKEN}%&a=1`];
  for (const target of targets) {
    const query = target.slice(target.indexOf('?') + 1);
    assert.ok(queryCredential(new URLSearchParams(query)), `${target} is recognised`);
    const stripped = stripPortholeParams(target);
    assert.equal(queryCredential(new URLSearchParams(stripped.slice(stripped.indexOf('?') + 1))), undefined, target);
    assert.ok(!stripped.includes(TOKEN.slice(3)) && !stripped.includes(CODE.slice(4)), `${target} → ${stripped}`);
  }
});

test("stripCookie: removes porthole's cookies, keeps the app's", () => {
  const names = ['porthole_session_abc', '__Host-porthole_session_abc'];
  const cases: [string, string | undefined][] = [
    ['porthole_session_abc=s1', undefined],
    ['porthole_session_abc=s1; __Host-porthole_session_abc=s2', undefined],
    ['a=1; porthole_session_abc=s1; b=2', 'a=1; b=2'],
    ['a=1;porthole_session_abc=s1;b=2', 'a=1; b=2'],
    ['sid=app; __Host-porthole_session_abc=s2', 'sid=app'],
    ['porthole_session_other=s9; porthole_session_abc=s1', 'porthole_session_other=s9'], // another gateway's
    ['porthole_session_abcd=x', 'porthole_session_abcd=x'],
    ['a=1', 'a=1'],
    ['', undefined],
    [' ; ; ', undefined],
    ['flag; porthole_session_abc=s1', 'flag'],
    ['porthole_session_abc', undefined], // nameless form still stripped
  ];
  for (const [header, want] of cases) assert.equal(stripCookie(header, names), want, header);
});
