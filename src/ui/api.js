// The API client: the session's bearer token, same-origin /v1 calls, and failures shown in the server's words.

import { append, clear, h } from './dom.js';

/** The signed-in token, kept in sessionStorage by app.js; null when signed out. */
export const session = { token: null };

let onUnauthorized = (_failure) => undefined;
/** app.js signs out when any call answers 401 (a revoked token, for example). */
export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

export class ApiFailure extends Error {
  constructor(status, code, message, details, request) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
    this.request = request;
  }
}

/**
 * Calls the API with the session's token. Non-2xx answers become ApiFailure with the server's own words.
 * A body is sent as JSON, or as it is (a File, for example) when `contentType` is given.
 */
export async function api(method, path, body, { accept = 'application/json', raw = false, quiet401 = false, contentType, keepalive = false } = {}) {
  const headers = { authorization: `Bearer ${session.token}`, accept };
  if (body !== undefined) headers['content-type'] = contentType ?? 'application/json';
  const request = `${method} ${path.split('?')[0]}`;
  const payload = body === undefined ? undefined : contentType ? body : JSON.stringify(body);
  let res;
  try {
    res = await fetch(path, { method, headers, body: payload, cache: 'no-store', credentials: 'omit', keepalive });
  } catch {
    throw new ApiFailure(0, 'network_error', 'The server could not be reached. Check that the engine is running and try again.', undefined, request);
  }
  if (res.ok && raw) return res;
  const text = await res.text();
  let json;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  if (!res.ok) {
    const e = json && typeof json === 'object' && json.error && typeof json.error === 'object' ? json.error : {};
    const failure = new ApiFailure(
      res.status,
      typeof e.code === 'string' ? e.code : `http_${res.status}`,
      typeof e.message === 'string' ? e.message : text.slice(0, 300) || res.statusText || 'The request failed.',
      e.details,
      request,
    );
    if (res.status === 401 && !quiet401) onUnauthorized(failure);
    throw failure;
  }
  return json;
}

/** A route that is not on this server yet answers 404 "No route ..."; tell that apart from a missing item. */
export const isMissingRoute = (err) => err instanceof ApiFailure && err.status === 404 && /^No route/i.test(err.message);

/** Shows an API failure plainly: what we tried, the status, the code and the server's message and details. */
export function showError(container, what, err) {
  const box = h('div', { class: 'notice notice-error', role: 'alert' });
  if (err instanceof ApiFailure) {
    const status = err.status ? `${err.status} ` : '';
    append(box, [
      h('p', {}, h('strong', {}, what), ' ', isMissingRoute(err) ? 'This server does not offer this API yet.' : ''),
      h('p', {}, `${err.message} `, h('span', { class: 'muted' }, `(${status}${err.code}, ${err.request})`)),
    ]);
    if (Array.isArray(err.details) && err.details.length > 0) {
      append(box, h('ul', {}, err.details.map((d) => h('li', {}, d && typeof d === 'object' ? [h('code', {}, d.path ?? '?'), ' ', d.message ?? JSON.stringify(d)] : String(d)))));
    } else if (err.details !== undefined && !Array.isArray(err.details)) {
      append(box, h('pre', {}, JSON.stringify(err.details, null, 2)));
    }
  } else {
    append(box, h('p', {}, h('strong', {}, what), ' ', err instanceof Error ? err.message : String(err)));
  }
  clear(container, box);
  return box;
}
