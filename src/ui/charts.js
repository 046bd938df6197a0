// Inline SVG charts, drawn from data with no library. Series differ by pattern as well as colour, every
// chart has a text alternative, and every value is also in a table beside it.

import { append, h, svg } from './dom.js';
import { compareDecimal, money, pad, ratio, shortId, utc } from './format.js';

const intFmt = new Intl.NumberFormat('en-US');

/** Nice round axis maximum and step for a count axis. */
function axis(max, ticks = 4) {
  if (max <= 0) return { top: ticks, step: 1 };
  const raw = max / ticks;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw && (s >= 1 || mag < 1)) ?? 10 * mag;
  const wholeStep = Math.max(1, Math.ceil(step));
  return { top: wholeStep * Math.ceil(max / wholeStep), step: wholeStep };
}

/** Grouped bars per UTC hour: S2S solid, pixel hatched, so the two never differ by colour alone. */
export function hourlyChart(rows, run) {
  const byHour = new Map();
  for (const r of rows) {
    const t = new Date(r.hour).getTime();
    if (!Number.isFinite(t)) continue;
    const cur = byHour.get(t) ?? { s2s: 0, pixel: 0 };
    cur.s2s += Number(r.s2s) || 0;
    cur.pixel += Number(r.pixel) || 0;
    byHour.set(t, cur);
  }
  // Every hour of the window, so gaps show as gaps (capped so a month-long window stays readable).
  const hours = [];
  const from = Math.floor(new Date(run.from).getTime() / 3600_000) * 3600_000;
  const to = new Date(run.to).getTime();
  if (Number.isFinite(from) && Number.isFinite(to) && (to - from) / 3600_000 <= 24 * 14) {
    for (let t = from; t < to; t += 3600_000) hours.push(t);
  }
  for (const t of byHour.keys()) if (!hours.includes(t)) hours.push(t);
  hours.sort((a, b) => a - b);

  const figure = h('figure', { class: 'chart' });
  if (!hours.length) {
    append(figure, h('p', { class: 'empty' }, 'No hourly data in this run.'));
    return figure;
  }
  const values = hours.map((t) => byHour.get(t) ?? { s2s: 0, pixel: 0 });
  const max = Math.max(0, ...values.flatMap((v) => [v.s2s, v.pixel]));
  const { top, step } = axis(max);
  const W = 760;
  const H = 260;
  const m = { top: 12, right: 12, bottom: 40, left: 44 };
  const iw = W - m.left - m.right;
  const ih = H - m.top - m.bottom;
  const band = iw / hours.length;
  const barW = Math.max(1, Math.min(18, (band * 0.8) / 2));
  const y = (v) => m.top + ih - (v / top) * ih;
  const sumS2s = values.reduce((a, v) => a + v.s2s, 0);
  const sumPixel = values.reduce((a, v) => a + v.pixel, 0);
  const labelEvery = Math.max(1, Math.ceil(hours.length / 12));
  const id = `chart-${Math.random().toString(36).slice(2, 8)}`;

  const grid = [];
  for (let v = 0; v <= top; v += step) {
    grid.push(svg('line', { x1: m.left, x2: W - m.right, y1: y(v), y2: y(v), class: v === 0 ? 'axis-line' : 'grid-line' }));
    grid.push(svg('text', { x: m.left - 6, y: y(v) + 4, class: 'tick', 'text-anchor': 'end' }, intFmt.format(v)));
  }
  const bars = hours.map((t, i) => {
    const v = values[i];
    const x0 = m.left + i * band + (band - barW * 2) / 2;
    const d = new Date(t);
    const label = `${utc(d.toISOString())} UTC: S2S ${v.s2s}, pixel ${v.pixel}`;
    const showLabel = i % labelEvery === 0;
    return svg(
      'g',
      { class: 'bar-group' },
      svg('title', {}, label),
      svg('rect', { x: m.left + i * band, y: m.top, width: band, height: ih, class: 'bar-hit' }),
      svg('rect', { x: x0, y: y(v.s2s), width: barW, height: Math.max(0, y(0) - y(v.s2s)), class: 'bar bar-s2s' }),
      svg('rect', { x: x0 + barW, y: y(v.pixel), width: barW, height: Math.max(0, y(0) - y(v.pixel)), class: 'bar bar-pixel', fill: `url(#${id}-hatch)` }),
      showLabel ? svg('text', { x: m.left + i * band + band / 2, y: H - m.bottom + 16, class: 'tick', 'text-anchor': 'middle' }, `${pad(d.getUTCHours())}:00`) : null,
      showLabel && (i === 0 || d.getUTCHours() < labelEvery) ? svg('text', { x: m.left + i * band + band / 2, y: H - m.bottom + 30, class: 'tick tick-date', 'text-anchor': 'middle' }, `${d.getUTCDate()} ${d.toLocaleString('en', { month: 'short', timeZone: 'UTC' })}`) : null,
    );
  });

  append(
    figure,
    h(
      'figcaption',
      { class: 'chart-head' },
      h('span', { class: 'chart-title' }, 'S2S vs pixel per hour (UTC)'),
      h(
        'span',
        { class: 'legend', 'aria-hidden': 'true' },
        h('span', { class: 'legend-item' }, h('span', { class: 'swatch swatch-s2s' }), `S2S (${intFmt.format(sumS2s)})`),
        h('span', { class: 'legend-item' }, h('span', { class: 'swatch swatch-pixel' }), `Pixel, hatched (${intFmt.format(sumPixel)})`),
      ),
    ),
    svg(
      'svg',
      { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-labelledby': `${id}-title ${id}-desc`, class: 'chart-svg', preserveAspectRatio: 'xMidYMid meet' },
      svg('title', { id: `${id}-title` }, 'S2S postbacks and pixel events per hour'),
      svg('desc', { id: `${id}-desc` }, `${hours.length} hours; S2S total ${sumS2s}, pixel total ${sumPixel}; busiest hour ${max}. The rows table below has every value.`),
      svg(
        'defs',
        {},
        svg('pattern', { id: `${id}-hatch`, width: 5, height: 5, patternUnits: 'userSpaceOnUse', patternTransform: 'rotate(45)' },
          svg('rect', { width: 5, height: 5, class: 'hatch-bg' }),
          svg('line', { x1: 0, y1: 0, x2: 0, y2: 5, class: 'hatch-line' }),
        ),
      ),
      grid,
      bars,
    ),
  );
  return figure;
}

/** Horizontal bars of payout per publisher for one currency, longest first, the amount written beside each. */
export function payoutChart(currency, rows) {
  const MAX_BARS = 15;
  const sorted = [...rows].sort((a, b) => compareDecimal(b.payout, a.payout)).slice(0, MAX_BARS);
  const maxPayout = sorted.reduce((a, r) => (compareDecimal(r.payout, a) > 0 ? r.payout : a), '0');
  const rowH = 30;
  const W = 760;
  const labelW = 200;
  const valueW = 150;
  const H = sorted.length * rowH + 8;
  const barMax = W - labelW - valueW - 16;
  const figure = h('figure', { class: 'chart' });
  append(
    figure,
    h('figcaption', { class: 'chart-head' }, h('span', { class: 'chart-title' }, `Payout total, ${currency}`), rows.length > MAX_BARS ? h('span', { class: 'muted' }, `top ${MAX_BARS} of ${rows.length}`) : null),
    svg(
      'svg',
      { viewBox: `0 0 ${W} ${H}`, role: 'img', class: 'chart-svg chart-bars', 'aria-label': `Payout total per publisher in ${currency}: ${sorted.map((r) => `${r.publisherName ?? r.publisherId} ${r.payout}`).join('; ')}` },
      sorted.map((r, i) => {
        const w = Math.max(compareDecimal(r.payout, '0') > 0 ? 2 : 0, ratio(r.payout, maxPayout) * barMax);
        const yTop = 4 + i * rowH;
        return svg(
          'g',
          {},
          svg('title', {}, `${r.publisherId}: ${money(r.payout, currency)}, ${r.approved ?? '?'} approved`),
          svg('text', { x: labelW - 8, y: yTop + rowH / 2 + 4, class: 'tick tick-label', 'text-anchor': 'end' }, shortId(r.publisherName ?? r.publisherId)),
          svg('rect', { x: labelW, y: yTop + 5, width: barMax, height: rowH - 10, class: 'bar-track' }),
          svg('rect', { x: labelW, y: yTop + 5, width: w, height: rowH - 10, class: 'bar bar-payout' }),
          svg('text', { x: labelW + barMax + 8, y: yTop + rowH / 2 + 4, class: 'tick tick-value' }, money(r.payout, currency)),
        );
      }),
    ),
  );
  return figure;
}
