import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { UI_CSP } from '../src/ui/route.js';
import { ADMIN, auth, startTestEngine, type TestEngine } from './helpers/engine.js';

/**
 * CONTRACT §8's web UI: static files under /ui/ with a strict CSP, nothing loaded from elsewhere, and
 * API calls only to the contract's own /v1 routes, checked without a browser. The pages driven in a real
 * Chromium are test/ui-browser*.test.ts.
 */

/**
 * Every /v1 route the UI may call: CONTRACT §8 review and finance, §7 reconciliation, and the one
 * documented extension the analysts' queue is built on (flagged and undecided, by payout × score).
 */
const UI_ROUTES = [
  '/v1/conversions',
  '/v1/reviews/queue',
  '/v1/conversions/:id',
  '/v1/conversions/:id/review',
  '/v1/reconciliations',
  '/v1/reconciliations/:id',
  '/v1/reports/payouts',
  '/v1/reports/advertisers',
  '/v1/reconciliations/advertiser-report',
  '/v1/advertisers',
  '/v1/postback-attempts',
  '/v1/audit',
  '/v1/fx-rates',
  '/v1/fx-rates/:id',
  '/v1/fraud/rules/quality',
  '/v1/fraud/rules',
  '/v1/offers',
  '/v1/publishers',
  '/v1/deliveries',
  '/v1/deliveries/:id/replay',
  '/v1/publishers/:id/enable',
];

const TYPES: Record<string, string> = { html: 'text/html; charset=utf-8', js: 'text/javascript; charset=utf-8', css: 'text/css; charset=utf-8' };

let t: TestEngine;
/** Every file the page loads, found by following index.html's tags and the modules' imports. */
const files = new Map<string, { body: string; headers: Record<string, unknown> }>();

beforeAll(async () => {
  t = await startTestEngine();
  const queue = ['index.html'];
  while (queue.length) {
    const name = queue.shift() as string;
    if (files.has(name)) continue;
    const res = await t.app.inject({ method: 'GET', url: `/ui/${name}` });
    if (res.statusCode !== 200) throw new Error(`/ui/${name} -> ${res.statusCode}`);
    files.set(name, { body: res.body, headers: res.headers });
    const refs = name.endsWith('.html')
      ? // What the page loads: src attributes and <link href>. A plain <a href> is a link a person may follow, not a load.
        [...res.body.matchAll(/(?:\bsrc="([^"#]+)"|<link\b[^>]*\bhref="([^"#]+)")/g)].map((m) => (m[1] ?? m[2]) as string)
      : [...res.body.matchAll(/^import\b[^;]*?\bfrom\s*'([^']+)';|\bimport\(\s*'([^']+)'\s*\)/gm)].map((m) => (m[1] ?? m[2]) as string);
    for (const ref of refs) {
      expect(ref, `${name} refers to ${ref}`).toMatch(/^(\/ui\/|\.\/)[a-z0-9-]+\.(js|css)$/);
      queue.push(ref.replace(/^\/ui\/|^\.\//, ''));
    }
  }
});
afterAll(async () => t?.close());

const scripts = () => [...files].filter(([name]) => name.endsWith('.js'));

describe('serving /ui/', () => {
  it('serves the page, its stylesheet and every module it imports, with their content types and no token', () => {
    expect([...files.keys()]).toEqual(expect.arrayContaining(['index.html', 'style.css', 'app.js', 'api.js', 'review.js', 'reconciliation.js', 'payouts.js']));
    for (const [name, file] of files) {
      expect(file.headers['content-type'], name).toBe(TYPES[name.split('.').pop() as string]);
      expect(file.headers['cache-control'], name).toBe('no-cache');
      expect(file.headers['x-content-type-options'], name).toBe('nosniff');
    }
  });

  it('sends a strict Content-Security-Policy: this origin only, no inline script or style, no framing', () => {
    for (const [name, file] of files) expect(file.headers['content-security-policy'], name).toBe(UI_CSP);
    const directives = new Map(UI_CSP.split(';').map((d) => d.trim().split(/\s+/)).map(([k, ...v]) => [k, v]));
    expect(directives.get('default-src')).toEqual(["'self'"]);
    expect(directives.get('script-src')).toEqual(["'self'"]);
    expect(directives.get('style-src')).toEqual(["'self'"]);
    expect(directives.get('connect-src')).toEqual(["'self'"]);
    expect(directives.get('frame-ancestors')).toEqual(["'none'"]);
    expect(UI_CSP).not.toMatch(/unsafe-|data:|blob:|https?:|\*/);
  });

  it('redirects /ui to /ui/, keeping the query', async () => {
    const bare = await t.app.inject({ method: 'GET', url: '/ui' });
    expect(bare.statusCode).toBe(301);
    expect(bare.headers.location).toBe('/ui/');
    const withQuery = await t.app.inject({ method: 'GET', url: '/ui?x=1' });
    expect(withQuery.headers.location).toBe('/ui/?x=1');
    const index = await t.app.inject({ method: 'GET', url: '/ui/' });
    expect(index.statusCode).toBe(200);
    expect(index.body).toBe(files.get('index.html')?.body);
  });

  it('answers 304 to a matching If-None-Match, so no-cache costs a round trip, not a download', async () => {
    const first = await t.app.inject({ method: 'GET', url: '/ui/app.js' });
    const etag = first.headers.etag as string;
    expect(etag).toMatch(/^"[\w-]+"$/);
    const again = await t.app.inject({ method: 'GET', url: '/ui/app.js', headers: { 'if-none-match': etag } });
    expect(again.statusCode).toBe(304);
    expect(again.body).toBe('');
  });

  it('serves nothing else from the folder: no source, no guesses', async () => {
    for (const url of ['/ui/route.ts', '/ui/nope.js', '/ui/../app.ts', '/ui/%2e%2e/engine.ts']) {
      const res = await t.app.inject({ method: 'GET', url });
      expect(res.statusCode, url).toBe(404);
      expect(res.json().error.code, url).toBe('not_found');
    }
  });
});

describe('what the page contains', () => {
  it('has no inline script, event handler or style in the HTML', () => {
    const html = files.get('index.html')?.body ?? '';
    for (const tag of html.match(/<script\b[^>]*>/g) ?? []) expect(tag).toMatch(/\bsrc="\/ui\/[a-z0-9-]+\.js"/);
    expect(html).not.toMatch(/<script\b[^>]*>[^<\s]/);
    expect(html).not.toMatch(/\son[a-z]+\s*=/i);
    expect(html).not.toMatch(/\sstyle\s*=|<style\b/i);
  });

  it('loads nothing from another origin: no external URLs, fonts or imports', () => {
    for (const [name, file] of files) {
      // The SVG namespace is an identifier, not a URL anything is fetched from.
      // DB-IP's licence asks for a link to it where its results are used: a link, never a load.
      const text = file.body.replaceAll('http://www.w3.org/2000/svg', '').replaceAll('<a href="https://db-ip.com" rel="noopener noreferrer">', '<a>');
      expect(text, name).not.toMatch(/\bhttps?:\/\//);
      expect(text, name).not.toMatch(/['"(]\/\/[a-z0-9]/i);
      expect(text, name).not.toMatch(/@import|@font-face|url\(\s*['"]?(?!#)/);
    }
  });

  it('calls only same-origin /v1 routes that the contract (or the README, for the queue) defines, and builds no DOM from HTML strings', () => {
    const used = new Set<string>();
    for (const [name, file] of scripts()) {
      expect(file.body, name).not.toMatch(/\.innerHTML|\.outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function/);
      for (const m of file.body.matchAll(/[`'"](\/v1\/[^`'"]*)[`'"]/g)) {
        const route = (m[1] as string)
          .replace(/\$\{encodeURIComponent\([^)]*\)\}/g, ':id')
          .replace(/cv_ui_role_probe/, ':id')
          .replace(/\?.*$/, '');
        expect(UI_ROUTES, `${name}: ${m[1]}`).toContain(route);
        used.add(route);
      }
      // fetch() is only ever called with those paths (never a full URL), in one place.
      for (const call of file.body.match(/\bfetch\([^,)]*/g) ?? []) expect(call, name).toBe('fetch(path');
    }
    expect([...used].sort()).toEqual([...UI_ROUTES].sort());
  });
});

describe('the role probes the page signs in with', () => {
  // The page shows a section unless its probe answers 403 (and signs out on 401). Each probe is harmless.
  const probes = {
    conversions: { method: 'GET' as const, url: '/v1/conversions?decision=flagged&limit=1' },
    review: { method: 'POST' as const, url: '/v1/conversions/cv_ui_role_probe/review', payload: {} },
    reconciliation: { method: 'GET' as const, url: '/v1/reconciliations?limit=1' },
    deliveries: { method: 'GET' as const, url: '/v1/deliveries?limit=1' },
    payouts: { method: 'GET' as const, url: `/v1/reports/payouts?from=2030-01-01T00:00:00.000Z&to=2030-01-01T01:00:00.000Z&format=json` },
    refused: { method: 'GET' as const, url: '/v1/postback-attempts?limit=1' },
    fx: { method: 'GET' as const, url: '/v1/fx-rates?limit=1' },
    audit: { method: 'GET' as const, url: '/v1/audit?limit=1' },
    quality: { method: 'GET' as const, url: '/v1/fraud/rules/quality' },
  };
  const SECTIONS = ['review', 'conversions', 'deliveries', 'reconciliation', 'payouts', 'refused', 'fx', 'quality', 'audit'] as const;
  const token = async (role: string) => {
    const res = await t.app.inject({ method: 'POST', url: '/v1/tokens', headers: auth(), payload: { role, name: `ui ${role}` } });
    return res.json().token as string;
  };
  const probe = async (name: keyof typeof probes, bearer: string) => (await t.app.inject({ ...probes[name], headers: auth(bearer) })).statusCode;
  const exists = (name: keyof typeof probes) => t.app.hasRoute({ method: probes[name].method, url: probes[name].url.split('?')[0]!.replace('cv_ui_role_probe', ':id') });

  it('an unknown token is 401 everywhere, which sends the page back to sign-in', async () => {
    for (const name of (Object.keys(probes) as (keyof typeof probes)[]).filter(exists)) expect(await probe(name, 'not-a-token-0123456789'), name).toBe(401);
  });

  it('admin sees every section; analyst review, conversions, refused postbacks and rule quality; finance conversions, deliveries, reconciliation, payouts and FX rates', async () => {
    const analyst = await token('analyst');
    const finance = await token('finance');
    const shown = async (bearer: string) => {
      const out: string[] = [];
      for (const name of SECTIONS) {
        if (!exists(name)) continue; // a route still being built: its section cannot be judged here yet
        const status = await probe(name, bearer);
        expect(status, `${name} probe`).not.toBe(401);
        const readable = name !== 'review' || (await probe('conversions', bearer)) !== 403;
        if (status !== 403 && readable) out.push(name);
      }
      return out;
    };
    const built = SECTIONS.filter(exists);
    expect(await shown(ADMIN)).toEqual(built);
    expect(await shown(analyst)).toEqual(built.filter((s) => s === 'review' || s === 'conversions' || s === 'refused' || s === 'quality'));
    expect(await shown(finance)).toEqual(built.filter((s) => s === 'conversions' || s === 'deliveries' || s === 'reconciliation' || s === 'payouts' || s === 'fx'));
    // The probe names no real conversion: nothing was reviewed.
    expect((await t.sql`select count(*)::int as n from reviews`)[0]?.n).toBe(0);
  });
});

/** The page's plain ES modules, loaded as they are (untyped: the UI has no build step). */
const uiModule = (name: string) => import(`../src/ui/${name}`) as Promise<Record<string, (...args: unknown[]) => unknown>>;

describe('the finance and support pages\' own logic', () => {
  it('reads FX rate lines into decimal strings, naming the lines that are not "CODE rate"', async () => {
    const { parseRateLines } = await uiModule('fx-rates.js');
    expect(parseRateLines!('EUR 0.92\njpy,151.3\n\nKWD: 0.3071\nGBP=0.79')).toEqual({ rates: { EUR: '0.92', JPY: '151.3', KWD: '0.3071', GBP: '0.79' }, bad: [] });
    expect((parseRateLines!('EUR 0.92\nEURO 1\nUSD -1\nCHF 1e3') as { bad: number[] }).bad).toEqual([2, 3, 4]);
  });

  it('reads pasted JSON rates (a bare object or a whole PUT body) as decimal strings, naming what is not CODE: rate', async () => {
    const { parseRateJson } = await uiModule('fx-rates.js');
    expect(parseRateJson!('{"base": "usd", "rates": {"EUR": "0.92", "jpy": 151.3, "EURO": "1", "GBP": "-1", "CHF": "1e3"}}')).toEqual({
      rates: { EUR: '0.92', JPY: '151.3' },
      bad: ['EURO', 'GBP', 'CHF'],
      base: 'USD',
    });
    expect(parseRateJson!('{"KWD": " 0.3071 "}')).toEqual({ rates: { KWD: '0.3071' }, bad: [], base: undefined });
    expect((parseRateJson!('{"EUR": 0.92') as { bad: string[] }).bad).toEqual(['the JSON does not parse']);
    expect((parseRateJson!('[["EUR", "0.92"]]') as { bad: string[] }).bad).toEqual(['the JSON must be an object of CODE: rate']);
  });

  it('shows an audit entry as the fields that changed', async () => {
    const { changedFields } = await uiModule('audit.js');
    expect(changedFields!({ name: 'A', payout: '2.50', goals: { a: 1 } }, { name: 'A', payout: '3.00', goals: { a: 1 }, revenue: '3.10' })).toEqual([
      ['payout', '2.50', '3.00'],
      ['revenue', undefined, '3.10'],
    ]);
    expect(changedFields!(null, { id: 'x' })).toEqual([['id', undefined, 'x']]);
  });
});

/** Just enough of a page for the modules that show their state in fixed elements (found by ID). */
function fakePage(ids: string[]) {
  const elements = new Map(ids.map((id) => [id, { id, hidden: true, textContent: '', checked: false, listeners: new Map<string, () => void>(), addEventListener(type: string, fn: () => void) { this.listeners.set(type, fn); } }]));
  const body = { classes: new Set<string>(), classList: { toggle: (c: string, on: boolean) => (on ? body.classes.add(c) : body.classes.delete(c)) } };
  Object.assign(globalThis, { document: { getElementById: (id: string) => elements.get(id) ?? null, body }, window: { addEventListener: () => undefined } });
  return { el: (id: string) => elements.get(id)!, body };
}

describe('a review decision waits behind Undo before it is sent', () => {
  afterEach(() => {
    vi.useRealTimers();
    Reflect.deleteProperty(globalThis, 'document');
    Reflect.deleteProperty(globalThis, 'window');
  });

  it('sends after UNDO_SECONDS, never before; Undo cancels it; a second decision sends the first at once', async () => {
    vi.useFakeTimers();
    const page = fakePage(['undo-bar', 'undo-message', 'undo-countdown', 'undo-button']);
    const decisions = await uiModule('pending-decision.js');
    decisions.init!();
    const sent: string[] = [];
    const undone: string[] = [];
    const decide = (id: string) => decisions.schedule!({ message: `Approving ${id}…`, send: () => sent.push(id), onUndo: () => undone.push(id) });

    decide('cv_1');
    expect(page.el('undo-bar').hidden).toBe(false);
    expect(page.el('undo-message').textContent).toBe('Approving cv_1…');
    vi.advanceTimersByTime((Number(decisions.UNDO_SECONDS) - 1) * 1000);
    expect(sent).toEqual([]);
    expect(page.el('undo-countdown').textContent).toBe('1 s');
    vi.advanceTimersByTime(1000);
    expect(sent).toEqual(['cv_1']);
    expect(page.el('undo-bar').hidden).toBe(true);
    expect(decisions.undo!()).toBe(false); // too late: it was sent

    decide('cv_2');
    page.el('undo-button').listeners.get('click')!();
    vi.advanceTimersByTime(60_000);
    expect(sent).toEqual(['cv_1']);
    expect(undone).toEqual(['cv_2']);

    decide('cv_3');
    decide('cv_4');
    expect(sent).toEqual(['cv_1', 'cv_3']);
    decisions.discard!(); // signed out by a 401: nothing is sent with a token that is gone
    vi.advanceTimersByTime(60_000);
    expect(sent).toEqual(['cv_1', 'cv_3']);
    expect(decisions.hasPending!()).toBe(false);
  });
});

describe('single-key shortcuts can be switched off (WCAG 2.1.4)', () => {
  afterEach(() => {
    for (const key of ['document', 'window', 'localStorage']) Reflect.deleteProperty(globalThis, key);
  });

  it('are on by default, remember being switched off, and never fire while typing in a field', async () => {
    const stored = new Map<string, string>();
    Object.assign(globalThis, { localStorage: { getItem: (k: string) => stored.get(k) ?? null, setItem: (k: string, v: string) => stored.set(k, v) } });
    const page = fakePage(['shortcuts-enabled', 'review-keys', 'review-keys-off']);
    const shortcuts = await uiModule('shortcuts.js');
    shortcuts.init!();
    expect(shortcuts.enabled!()).toBe(true);
    expect(page.el('shortcuts-enabled').checked).toBe(true);
    expect(page.el('review-keys').hidden).toBe(false);

    page.el('shortcuts-enabled').checked = false;
    page.el('shortcuts-enabled').listeners.get('change')!();
    expect(shortcuts.enabled!()).toBe(false);
    expect(stored.get('pbe.shortcuts')).toBe('off');
    expect(page.el('review-keys').hidden).toBe(true);
    expect(page.el('review-keys-off').hidden).toBe(false);
    expect(page.body.classes.has('shortcuts-off')).toBe(true);
    shortcuts.init!(); // the next visit
    expect(shortcuts.enabled!()).toBe(false);

    class FakeElement {
      constructor(readonly tagName: string, readonly isContentEditable = false) {}
      closest() {
        return null;
      }
      getAttribute() {
        return null;
      }
    }
    Object.assign(globalThis, { HTMLElement: FakeElement });
    const key = (target: unknown, mods = {}) => shortcuts.isTyping!({ target, ctrlKey: false, metaKey: false, altKey: false, ...mods });
    expect(key(new FakeElement('INPUT'))).toBe(true);
    expect(key(new FakeElement('TEXTAREA'))).toBe(true);
    expect(key(new FakeElement('DIV', true))).toBe(true);
    expect(key(new FakeElement('TR'))).toBe(false);
    expect(key(new FakeElement('TR'), { ctrlKey: true })).toBe(true);
    Reflect.deleteProperty(globalThis, 'HTMLElement');
  });
});
