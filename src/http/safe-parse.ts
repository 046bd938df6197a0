import { parse as parseQueryString } from 'fast-querystring';
import { invalidRequest, type ApiError } from '../errors.js';

/**
 * The one parsing path for untrusted key/value input: query strings, form bodies and JSON bodies.
 * Query and form parse into null-prototype objects (fast-querystring, also fastify's query parser),
 * and a `__proto__` or `constructor` key anywhere is refused (contract §4): such a key is never an
 * honest field, and code that copies fields into a plain object would let it rewrite the prototype.
 */

const FORBIDDEN_KEYS = ['__proto__', 'constructor'] as const;

export type UrlEncoded = Record<string, string | string[]>;

export function parseUrlEncoded(text: string): UrlEncoded {
  return parseQueryString(text) as UrlEncoded;
}

/** The forbidden key of a flat query or form object, if any: two lookups, cheap enough for every request. */
export function forbiddenFlatKey(fields: object): string | undefined {
  for (const key of FORBIDDEN_KEYS) if (Object.hasOwn(fields, key)) return key;
  return undefined;
}

/**
 * The first forbidden key in a value, at any depth of objects and arrays (JSON, JWT claims), or in
 * a flat query or form object. Own keys only: `'constructor' in {}` is true for every plain object.
 */
export function forbiddenKeyIn(value: unknown): string | undefined {
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const current = stack.pop();
    if (current === null || typeof current !== 'object') continue;
    for (const key of FORBIDDEN_KEYS) if (Object.hasOwn(current, key)) return key;
    for (const child of Object.values(current)) if (child !== null && typeof child === 'object') stack.push(child);
  }
  return undefined;
}

export function forbiddenKeyError(key: string): ApiError {
  return invalidRequest([{ path: key, message: 'is not an allowed key' }]);
}
