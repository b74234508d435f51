// The console's one way to the gateway's HTTP API: same-origin fetches carrying the session
// cookie, JSON in and out, errors as ApiError with the server's stable code.
export const API = '/_porthole/api';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

type Listener = (err: ApiError) => void;
const authListeners = new Set<Listener>();

/** Called when any request answers 401: the session is gone (expired, revoked, rotated). */
export function onAuthLost(fn: Listener): () => void {
  authListeners.add(fn);
  return () => authListeners.delete(fn);
}

export interface RequestOptions {
  method?: 'GET' | 'POST';
  body?: unknown;
  headers?: Record<string, string>;
  /** Answer text instead of JSON (config snippets). */
  text?: boolean;
  /** Do not report a 401 as a lost session (sign-in attempts). */
  quiet401?: boolean;
}

export async function api<T = unknown>(path: string, o: RequestOptions = {}): Promise<T> {
  const method = o.method ?? (o.body === undefined ? 'GET' : 'POST');
  const headers: Record<string, string> = { accept: o.text ? 'text/plain' : 'application/json', ...o.headers };
  let body: string | undefined;
  if (method === 'POST') {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(o.body ?? {});
  }
  let res: Response;
  try {
    res = await fetch(`${API}${path}`, { method, headers, body, credentials: 'same-origin', cache: 'no-store' });
  } catch {
    throw new ApiError(0, 'NETWORK', 'the gateway cannot be reached');
  }
  if (!res.ok) {
    let code = `HTTP_${res.status}`;
    let message = res.statusText || 'request failed';
    try {
      const j = (await res.json()) as { error?: { code?: string; message?: string } };
      if (j.error?.code) code = j.error.code;
      if (j.error?.message) message = j.error.message;
    } catch {
      // Not JSON (a proxy's page): keep the status.
    }
    const err = new ApiError(res.status, code, message);
    if (res.status === 401 && !o.quiet401) for (const fn of authListeners) fn(err);
    throw err;
  }
  return (o.text ? await res.text() : await res.json()) as T;
}

/** A message for people: the server's, with its code. */
export function describeError(err: unknown): string {
  if (err instanceof ApiError) return err.code.startsWith('HTTP_') ? err.message : `${err.message} [${err.code}]`;
  return err instanceof Error ? err.message : String(err);
}
