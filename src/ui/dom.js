// Building the page through the DOM: strings always become text nodes, never markup (no innerHTML anywhere).

const SVG_NS = 'http://www.w3.org/2000/svg';

export const $ = (id) => document.getElementById(id);

/** Element builder: h('td', {class: 'num'}, '2.50'). Strings become text nodes, never markup. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

export function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

function setAttrs(el, attrs) {
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else el.setAttribute(key, value === true ? '' : String(value));
  }
}

export function append(el, ...children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

let toastTimer;

/** A short status message in the corner, read out by screen readers (role=status). */
export function toast(message, kind = 'ok') {
  const el = $('toast');
  el.className = `toast toast-${kind}`;
  el.textContent = message;
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (el.hidden = true), 5000);
}

/** A small data table with a caption for screen readers; `numeric` lists right-aligned columns. */
export function table(caption, headers, rows, { numeric = [] } = {}) {
  if (!rows.length) return h('p', { class: 'empty' }, `No ${caption.toLowerCase()}.`);
  return h(
    'div',
    // A wide table scrolls sideways inside its wrap: focusable, so keyboard users can scroll it too (WCAG 2.1.1).
    { class: 'table-wrap', tabindex: 0, role: 'region', 'aria-label': caption },
    h(
      'table',
      { class: 'table table-compact' },
      h('caption', { class: 'visually-hidden' }, caption),
      h('thead', {}, h('tr', {}, headers.map((t, i) => h('th', { scope: 'col', class: numeric.includes(i) ? 'num' : undefined }, t)))),
      h('tbody', {}, rows.map((cells) => h('tr', {}, cells.map((v, i) => h('td', { class: numeric.includes(i) ? 'num' : undefined }, v))))),
    ),
  );
}

/** Saves a fetched file (a CSV export) under `fileName` through a temporary link. */
export async function saveDownload(res, fileName, type = 'text/csv') {
  const blob = await res.blob();
  const url = URL.createObjectURL(blob.type ? blob : new Blob([blob], { type }));
  const link = h('a', { href: url, download: fileName, class: 'visually-hidden' }, 'download');
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
