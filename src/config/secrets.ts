// Finds secrets in a parsed config file. porthole.toml is meant to be shared, synced and
// committed, so a token, password or porthole credential in it is refused outright — by
// key name anywhere (known section or not) and by value prefix. Values are never reported.
import { PortholeError } from '../errors.js';

// auth_token, registration_secret, api_key, password, … — but not token_file.
const SECRET_KEY = /(?:^|[_-])(?:token|password|passwd|secret|api[_-]?key)$/i;
// porthole tokens (ph_…) and one-time codes (phc_…).
const SECRET_VALUE = /^phc?_/;
// A password inside a URL: scheme://user:password@host
const URL_PASSWORD = /^[a-z][a-z0-9+.-]*:\/\/[^/?#@\s]*:[^/?#@\s]*@/i;

export function isSecretKey(name: string): boolean {
  return SECRET_KEY.test(name);
}

export function isSecretValue(value: string): boolean {
  return SECRET_VALUE.test(value) || URL_PASSWORD.test(value);
}

export function isTable(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date);
}

/** Dotted paths under `key` (inclusive) that hold a secret, by key name or value. */
export function findSecrets(key: string, value: unknown): string[] {
  const name = key.slice(key.lastIndexOf('.') + 1);
  if (isSecretKey(name)) return [key];
  if (typeof value === 'string') return isSecretValue(value) ? [key] : [];
  if (Array.isArray(value)) return value.some((v) => findSecrets(key, v).length > 0) ? [key] : [];
  if (isTable(value)) return Object.entries(value).flatMap(([k, v]) => findSecrets(`${key}.${k}`, v));
  return [];
}

/** The CONFIG_SECRET_IN_FILE error: where the secrets are (never what) and where they belong. */
export function secretInFileError(file: string, keys: string[], otherProblems: string[]): PortholeError {
  const where = keys.join(', ');
  const many = keys.length > 1;
  const it = many ? 'them' : 'it';
  const message =
    `${file}: ${many ? 'secrets' : 'secret'} found at ${where}; porthole never reads secrets from its config file. ` +
    `Remove ${it} (and rotate ${it}: stored in plain text, ${many ? 'they' : 'it'} may have been copied), then put the gateway token in ` +
    'PORTHOLE_AUTH_TOKEN or the secret store (`porthole init`, `porthole token rotate`; ' +
    '`porthole tunnel secret set` for the tunnel registration secret, `porthole password set` for the login password), ' +
    'or write it to a file only you ' +
    'can read and set token_file = "path" under [auth].';
  const details = [...keys.map((k) => `${file}: ${k}: secret in config file (value not shown)`), ...otherProblems];
  return new PortholeError('CONFIG_SECRET_IN_FILE', message, { details });
}
