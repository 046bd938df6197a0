// Formatting for people: counts, money as decimal strings (never a float), UTC times, and tolerant field access.

import { h } from './dom.js';

const intFmt = new Intl.NumberFormat('en-US');

export function count(v) {
  if (v === undefined || v === null || v === '') return '—';
  const n = Number(v);
  return Number.isFinite(n) && String(v).trim() !== '' ? intFmt.format(n) : String(v);
}

/** Thousands separators on a decimal string, digit by digit: money never goes through a float. */
export function money(amount, currency) {
  if (amount === undefined || amount === null) return '—';
  const text = String(amount);
  const m = /^(-?)(\d+)(\.\d+)?$/.exec(text);
  const shown = m ? `${m[1]}${m[2].replace(/\B(?=(\d{3})+(?!\d))/g, ',')}${m[3] ?? ''}` : text;
  return currency ? `${shown} ${currency}` : shown;
}

/** A decimal string as a BigInt scaled by 10^scale, and back: money arithmetic never uses a float. */
function parseDecimal(text) {
  const m = /^(-?)(\d+)(?:\.(\d+))?$/.exec(String(text ?? '0').trim());
  return m ? { neg: m[1] === '-', digits: m[2] + (m[3] ?? ''), scale: (m[3] ?? '').length } : { neg: false, digits: '0', scale: 0 };
}

function scaled(p, scale) {
  return (p.neg ? -1n : 1n) * BigInt(p.digits + '0'.repeat(scale - p.scale));
}

/** Adds decimal strings exactly. */
export function addDecimal(a, b) {
  const x = parseDecimal(a);
  const y = parseDecimal(b);
  const scale = Math.max(x.scale, y.scale);
  return formatScaled(scaled(x, scale) + scaled(y, scale), scale);
}

/** -1, 0 or 1, exactly. */
export function compareDecimal(a, b) {
  const x = parseDecimal(a);
  const y = parseDecimal(b);
  const scale = Math.max(x.scale, y.scale);
  const d = scaled(x, scale) - scaled(y, scale);
  return d < 0n ? -1 : d > 0n ? 1 : 0;
}

function formatScaled(value, scale) {
  const neg = value < 0n;
  const digits = (neg ? -value : value).toString().padStart(scale + 1, '0');
  const int = digits.slice(0, digits.length - scale);
  const frac = scale > 0 ? `.${digits.slice(digits.length - scale)}` : '';
  return `${neg ? '-' : ''}${int}${frac}`;
}

/** a / b as a plain number for drawing a bar only, computed on the digits; 0 when b is 0. */
export function ratio(a, b) {
  const x = parseDecimal(a);
  const y = parseDecimal(b);
  const scale = Math.max(x.scale, y.scale);
  const by = scaled(y, scale);
  if (by === 0n) return 0;
  return Number((scaled(x, scale) * 10000n) / by) / 10000;
}

export const pad = (n) => String(n).padStart(2, '0');

export function utc(iso, { seconds = false } = {}) {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  const base = `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`;
  return seconds ? `${base}:${pad(d.getUTCSeconds())}` : base;
}

export function timeEl(iso, text = utc(iso)) {
  return h('time', { datetime: iso ?? undefined, title: iso ?? undefined }, text);
}

/** How long ago: "3 h 5 min", or "3h 05m" where space is short. */
export function age(iso, compact = false) {
  const ms = Date.now() - new Date(iso).getTime();
  if (!Number.isFinite(ms)) return '—';
  const s = Math.max(0, Math.floor(ms / 1000));
  const m = Math.floor(s / 60);
  const hr = Math.floor(m / 60);
  if (compact) {
    if (s < 60) return `${s}s`;
    if (m < 60) return `${m}m`;
    if (hr < 48) return `${hr}h ${pad(m % 60)}m`;
    return `${Math.floor(hr / 24)}d ${pad(hr % 24)}h`;
  }
  if (s < 60) return `${s} s`;
  if (m < 60) return `${m} min`;
  if (hr < 48) return `${hr} h ${m % 60} min`;
  return `${Math.floor(hr / 24)} d ${hr % 24} h`;
}

export function plain(v) {
  if (v === undefined) return '—';
  if (v === null) return 'null';
  if (Array.isArray(v)) return v.map((x) => (x !== null && typeof x === 'object' ? JSON.stringify(x) : String(x))).join(', ');
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

/** An entity by name with its ID beside it (IDs are what the API filters by); the ID alone when unnamed. */
export function named(name, id) {
  if (!name) return h('span', { class: 'mono' }, plain(id));
  return h('span', { class: 'named' }, name, ' ', h('span', { class: 'mono muted small' }, plain(id)));
}

export const humanize = (key) => key.replace(/([a-z0-9])([A-Z])/g, '$1 $2').replace(/_/g, ' ').replace(/^./, (c) => c.toUpperCase());
export const shortId = (id) => (typeof id === 'string' && id.length > 18 ? `${id.slice(0, 10)}…${id.slice(-6)}` : id ?? '—');

/** Collections may come as {items}, {rows}, {data} or a bare array; take whichever is there. */
export function listOf(body, ...keys) {
  if (Array.isArray(body)) return body;
  for (const key of [...keys, 'items', 'rows', 'data']) if (body && Array.isArray(body[key])) return body[key];
  return [];
}

export const pick = (obj, ...keys) => {
  for (const key of keys) {
    const value = key.split('.').reduce((o, k) => (o && typeof o === 'object' ? o[k] : undefined), obj);
    if (value !== undefined && value !== null) return value;
  }
  return undefined;
};
