import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { chooseConnectUrl } from '../../src/gateway/connect-url.js';
import { type BannerInput, renderBanner } from '../../src/cli/banner.js';

const base: BannerInput = {
  url: 'http://127.0.0.1:7070',
  target: 'http://127.0.0.1:3000',
  remoteAccess: false,
  connectUrl: undefined,
  link: undefined,
  generatedToken: undefined,
  tokenSource: 'file /h/secrets',
  insecureNoAuth: false,
  loopbackExempt: true,
  socketPath: '/h/run/gateway.sock',
};

describe('the serve banner names how visitors sign in', () => {
  it('token mode (default) says nothing extra', () => {
    assert.doesNotMatch(renderBanner(base), /Sign-in:/);
  });

  it('password mode points browsers at the login page', () => {
    assert.match(renderBanner({ ...base, authMode: 'password' }), /Sign-in: password .*\/_porthole\/login/);
  });

  it('trusted-proxy mode names the user header and says tokens are not accepted remotely', () => {
    const text = renderBanner({ ...base, authMode: 'trusted-proxy', userHeader: 'X-Auth-User' });
    assert.match(text, /through the trusted proxy \(user in X-Auth-User\)/);
    assert.match(text, /not accepted remotely/);
  });
});

describe('the banner points at the console', () => {
  it('names /_porthole/ui/ on the listening URL', () => {
    assert.match(renderBanner(base), /console: http:\/\/127\.0\.0\.1:7070\/_porthole\/ui\//);
  });
});

describe('the connect address', () => {
  it('a bare IPv6 allowed origin (bracketed by the config loader) is bracketed once', () => {
    for (const host of ['[fd00::5]', 'fd00::5']) {
      assert.deepEqual(chooseConnectUrl('0.0.0.0', 47001, [host], []), { url: 'http://[fd00::5]:47001', reason: 'allowed-origin' });
    }
    assert.equal(chooseConnectUrl('::', 7070, ['[::1]'], [])?.url, 'http://[::1]:7070');
  });
});
