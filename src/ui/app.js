// Postback Engine web UI (CONTRACT §8): a review queue for analysts, reconciliation and payouts for finance.
// Plain ES modules, no dependencies, no build step. It talks only to this origin's /v1 API with the bearer
// token the user pasted, and tolerates fields it does not know (unknown totals and report columns are shown
// as they come). This module signs in, finds which sections the token may use, and switches tabs.

import { ApiFailure, session, setUnauthorizedHandler } from './api.js';
import { probeAccess } from './access.js';
import { $, toast } from './dom.js';
import { age } from './format.js';
import * as advertiserList from './advertiser-list.js';
import * as audit from './audit.js';
import * as conversions from './conversions.js';
import * as deliveries from './deliveries.js';
import * as fxRates from './fx-rates.js';
import * as refused from './refused.js';
import * as payouts from './payouts.js';
import * as reconciliation from './reconciliation.js';
import * as review from './review.js';
import * as ruleQuality from './rule-quality.js';
import * as pendingDecision from './pending-decision.js';
import * as shortcuts from './shortcuts.js';

const TOKEN_KEY = 'pbe.token';

const state = {
  access: { review: false, conversions: false, deliveries: false, reconciliation: false, payouts: false, refused: false, fx: false, quality: false, audit: false },
  tab: null,
  loaded: {},
};

// --------------------------------------------------------------------------------------- sign-in

function readTokenFromFragment() {
  // `/ui/#token=...` (optionally `#payouts&token=...`) signs in once; the token is removed from the URL.
  const parts = location.hash.replace(/^#/, '').split('&').filter(Boolean);
  const tokenPart = parts.find((p) => p.startsWith('token='));
  if (!tokenPart) return null;
  const rest = parts.filter((p) => p !== tokenPart);
  history.replaceState(null, '', `${location.pathname}${location.search}${rest.length ? `#${rest.join('&')}` : ''}`);
  try {
    return decodeURIComponent(tokenPart.slice('token='.length));
  } catch {
    return null;
  }
}

function normaliseToken(text) {
  return text.trim().replace(/^Bearer\s+/i, '');
}

async function signIn(token) {
  const error = $('signin-error');
  const submit = $('signin-submit');
  error.textContent = '';
  if (!/^[A-Za-z0-9._~+/=-]{1,512}$/.test(token)) {
    error.textContent = 'That does not look like an API token: it should be one word of letters, digits and . _ ~ + / = - characters.';
    showSignIn();
    return;
  }
  session.token = token;
  submit.disabled = true;
  submit.textContent = 'Checking token…';
  try {
    state.access = await probeAccess();
  } catch (err) {
    forgetToken();
    showSignIn();
    error.textContent =
      err instanceof ApiFailure && err.status === 401
        ? `The server refused this token (${err.code}): ${err.message}`
        : `Could not check the token: ${err instanceof Error ? err.message : String(err)}`;
    return;
  } finally {
    submit.disabled = false;
    submit.textContent = 'Sign in';
  }
  if (!TABS.some((tab) => state.access[tab])) {
    forgetToken();
    showSignIn();
    error.textContent = 'This token is valid but has no role this page serves (analyst, finance or admin).';
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  $('token-input').value = '';
  enterWorkspace();
}

function forgetToken() {
  session.token = null;
  sessionStorage.removeItem(TOKEN_KEY);
}

function signOut(message) {
  // A decision still inside its undo time is sent while the token is still there.
  if (!message) pendingDecision.flush();
  forgetToken();
  state.tab = null;
  state.loaded = {};
  review.reset();
  conversions.reset();
  deliveries.reset();
  refused.reset();
  fxRates.reset();
  audit.reset();
  ruleQuality.reset();
  reconciliation.reset();
  advertiserList.reset();
  payouts.reset();
  showSignIn();
  $('signin-error').textContent = message ?? '';
  if (!message) toast('Signed out.', 'info');
}

function showSignIn() {
  $('workspace').hidden = true;
  $('session').hidden = true;
  $('signin').hidden = false;
  $('token-input').focus();
}

const NAMES = { review: 'Review queue', conversions: 'Conversions', deliveries: 'Deliveries', reconciliation: 'Reconciliation', payouts: 'Payouts', refused: 'Refused postbacks', fx: 'FX rates', quality: 'Rule quality', audit: 'Audit' };

function enterWorkspace() {
  $('signin').hidden = true;
  $('workspace').hidden = false;
  $('session').hidden = false;
  const allowed = TABS.filter((k) => state.access[k]);
  for (const key of TABS) $(`tab-${key}`).hidden = !state.access[key];
  $('session-access').textContent = `Access: ${allowed.map((k) => NAMES[k]).join(', ')}`;
  const wanted = location.hash.replace(/^#/, '').split('&')[0];
  selectTab(allowed.includes(wanted) ? wanted : allowed[0], { focus: false });
}

// ------------------------------------------------------------------------------------------- tabs

const TABS = ['review', 'conversions', 'deliveries', 'reconciliation', 'payouts', 'refused', 'fx', 'quality', 'audit'];

function selectTab(name, { focus = true } = {}) {
  state.tab = name;
  for (const tab of TABS) {
    const button = $(`tab-${tab}`);
    const active = tab === name;
    button.setAttribute('aria-selected', String(active));
    button.tabIndex = active ? 0 : -1;
    $(`panel-${tab}`).hidden = !active;
  }
  if (focus) $(`tab-${name}`).focus();
  if (location.hash.replace(/^#/, '') !== name) history.replaceState(null, '', `#${name}`);
  if (!state.loaded[name]) {
    state.loaded[name] = true;
    if (name === 'review') void review.load({ reset: true });
    if (name === 'review' && state.access.quality) void ruleQuality.loadCallout();
    if (name === 'conversions') {
      conversions.setAccess({ canListCatalog: state.access.audit });
      void conversions.load();
    }
    // Only admins may write deliveries or list the catalog: the audit log is theirs alone, so its probe tells.
    if (name === 'deliveries') {
      deliveries.setAccess({ canWrite: state.access.audit });
      void deliveries.load();
    }
    if (name === 'reconciliation') void reconciliation.load({ openFirst: true });
    if (name === 'payouts') void payouts.load();
    if (name === 'refused') void refused.load();
    if (name === 'fx') void fxRates.load();
    if (name === 'audit') void audit.load();
    if (name === 'quality') void ruleQuality.load();
  }
}

function onTabKey(event) {
  const visible = TABS.filter((t) => !$(`tab-${t}`).hidden);
  const at = visible.indexOf(state.tab);
  let next;
  if (event.key === 'ArrowRight') next = visible[(at + 1) % visible.length];
  else if (event.key === 'ArrowLeft') next = visible[(at - 1 + visible.length) % visible.length];
  else if (event.key === 'Home') next = visible[0];
  else if (event.key === 'End') next = visible[visible.length - 1];
  if (next) {
    event.preventDefault();
    selectTab(next);
  }
}

function refreshAges() {
  for (const el of document.querySelectorAll('time[data-age]')) el.textContent = age(el.dataset.age, true);
}

function boot() {
  setUnauthorizedHandler((failure) => signOut(`The server refused the token (401 ${failure.code}): ${failure.message}`));
  $('signin-form').addEventListener('submit', (e) => {
    e.preventDefault();
    void signIn(normaliseToken($('token-input').value));
  });
  $('token-show').addEventListener('change', (e) => ($('token-input').type = e.target.checked ? 'text' : 'password'));
  $('sign-out').addEventListener('click', () => signOut());
  for (const tab of TABS) {
    $(`tab-${tab}`).addEventListener('click', () => selectTab(tab));
    $(`tab-${tab}`).addEventListener('keydown', onTabKey);
  }
  shortcuts.init();
  pendingDecision.init();
  review.init();
  conversions.init();
  deliveries.init();
  reconciliation.init();
  advertiserList.init();
  payouts.init();
  refused.init();
  fxRates.init();
  audit.init();
  ruleQuality.init();
  document.addEventListener('keydown', (event) => {
    if (session.token && state.tab === 'review' && !$('workspace').hidden) review.onKey(event);
  });
  window.addEventListener('hashchange', () => {
    const wanted = location.hash.replace(/^#/, '');
    if (session.token && TABS.includes(wanted) && state.access[wanted] && wanted !== state.tab) selectTab(wanted, { focus: false });
  });
  setInterval(refreshAges, 30_000);

  const fromFragment = readTokenFromFragment();
  const token = fromFragment ? normaliseToken(fromFragment) : sessionStorage.getItem(TOKEN_KEY);
  if (token) void signIn(token);
  else showSignIn();
}

boot();
