// Single-key shortcuts (WCAG 2.1.4): on by default, switched off with a visible checkbox, remembered in
// this browser (localStorage). They never fire while typing in a field, whatever the setting.

import { $ } from './dom.js';

const KEY = 'pbe.shortcuts';

/** `off` only when the user switched them off; storage that cannot be read keeps the default (on). */
export function shortcutsOn() {
  try {
    return localStorage.getItem(KEY) !== 'off';
  } catch {
    return true;
  }
}

function store(on) {
  try {
    localStorage.setItem(KEY, on ? 'on' : 'off');
  } catch {
    // Private modes may refuse storage: the setting then lasts for this page only.
  }
}

let on = true;
export const enabled = () => on;

export function init() {
  on = shortcutsOn();
  const box = $('shortcuts-enabled');
  box.checked = on;
  box.addEventListener('change', () => {
    on = box.checked;
    store(on);
    reflect();
  });
  reflect();
}

/** The key hints are shown only while the keys work. */
function reflect() {
  document.body.classList.toggle('shortcuts-off', !on);
  $('review-keys').hidden = !on;
  $('review-keys-off').hidden = on;
}

/** True when the key goes to a field being typed in (or a modifier makes it a browser shortcut). */
export function isTyping(event) {
  if (event.ctrlKey || event.metaKey || event.altKey) return true;
  const t = event.target instanceof HTMLElement ? event.target : null;
  if (!t) return false;
  return t.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(t.tagName) || !!t.closest('[contenteditable]') || t.getAttribute('role') === 'tab';
}
