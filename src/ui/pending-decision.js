// Undo for review decisions (the Gmail pattern): a decision waits UNDO_SECONDS before its POST is sent,
// beside an Undo button, because an approval releases the publisher's postback and cannot be recalled.
// Only one decision waits at a time: deciding the next conversion sends the one before at once.

import { $ } from './dom.js';

export const UNDO_SECONDS = 5;

/** { send(options), onUndo(), timer, ticker } while a decision waits; null otherwise. */
let pending = null;

export function init() {
  $('undo-button').addEventListener('click', () => undo());
  // Leaving the page sends what waits (keepalive outlives the page) rather than dropping it silently.
  window.addEventListener('pagehide', () => flush({ keepalive: true }));
}

/** @public read by test/ui.test.ts */
export const hasPending = () => pending !== null;

/**
 * Shows `message` with an Undo button and calls `send()` after UNDO_SECONDS, unless undone first.
 * `onUndo()` puts the page back as it was before the decision.
 */
export function schedule({ message, send, onUndo }) {
  flush();
  let left = UNDO_SECONDS;
  const entry = { send, onUndo, timer: 0, ticker: 0 };
  entry.timer = setTimeout(() => flush(), UNDO_SECONDS * 1000);
  entry.ticker = setInterval(() => {
    left -= 1;
    $('undo-countdown').textContent = `${Math.max(0, left)} s`;
  }, 1000);
  pending = entry;
  $('undo-message').textContent = message;
  $('undo-countdown').textContent = `${left} s`;
  $('undo-bar').hidden = false;
}

/** Cancels the waiting decision; false when nothing waits (it was sent already). */
export function undo() {
  const entry = take();
  if (!entry) return false;
  entry.onUndo();
  return true;
}

/** Sends the waiting decision now (before signing out, leaving the page, or deciding the next one). */
export function flush(options = {}) {
  const entry = take();
  if (entry) entry.send(options);
}

/** Forgets the waiting decision without sending it: the token it would be sent with is gone. */
export function discard() {
  take();
}

function take() {
  const entry = pending;
  if (!entry) return null;
  pending = null;
  clearTimeout(entry.timer);
  clearInterval(entry.ticker);
  $('undo-bar').hidden = true;
  return entry;
}
