import type { PgCost } from './pg-cost.js';
import { fmtInt } from './progress.js';

/** A PgCost as lines for the console and the `.md`, and as HTML for index.html. */

const num = (v: number, digits = 2) => String(Math.round(v * 10 ** digits) / 10 ** digits);

function rowsText(cost: PgCost): string {
  return Object.entries(cost.rows)
    .map(([table, r]) => {
      const parts = [r.inserted ? `${num(r.inserted, 3)} inserted` : '', r.updated ? `${num(r.updated, 3)} updated (${num(r.hotUpdated, 3)} HOT)` : '', r.deleted ? `${num(r.deleted, 3)} deleted` : ''];
      return `${table} ${parts.filter(Boolean).join(', ')}`;
    })
    .join('; ');
}

function entriesText(cost: PgCost): string {
  return Object.entries(cost.indexEntries)
    .sort((a, b) => b[1] - a[1])
    .map(([index, n]) => `${index} ${num(n, 3)}`)
    .join(', ');
}

export function pgCostLines(cost: PgCost, format: 'text' | 'markdown'): string[] {
  const b = format === 'markdown' ? '**' : '';
  const cpu = cost.processCpuUs === undefined ? 'n/a (PostgreSQL is not on this machine)' : `${num(cost.processCpuUs, 1)} µs`;
  const exec = cost.statementExecUs === undefined ? 'n/a (pg_stat_statements not loaded)' : `${num(cost.statementExecUs, 1)} µs in ${num(cost.statementCalls ?? 0)} statements`;
  const lines = [
    `- ${b}CPU${b} (postgres processes, /proc): ${cpu}; statements' execution time (pg_stat_statements): ${exec}; over ${fmtInt(cost.conversions)} conversions`,
    `- ${b}WAL${b}: ${fmtInt(cost.walBytes)} bytes`,
    `- ${b}rows${b}: ${rowsText(cost) || 'none'}`,
    `- ${b}index entries added${b} (leaf pages after − before): ${num(cost.indexEntriesTotal)} (${entriesText(cost) || 'none'})`,
  ];
  if (cost.topStatements.length > 0) {
    lines.push(`- ${b}statements by execution time${b} (µs, calls, rows and WAL bytes per conversion):`);
    for (const s of cost.topStatements) {
      const q = format === 'markdown' ? `\`${s.query.replace(/`/g, "'")}\`` : s.query;
      lines.push(`  - ${num(s.execUsPerConversion, 1)} µs, ${num(s.callsPerConversion, 3)} calls, ${num(s.rowsPerConversion, 3)} rows, ${fmtInt(s.walBytesPerConversion)} B: ${q}`);
    }
  }
  return lines;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

export function pgCostHtml(title: string, cost: PgCost): string {
  const statements = cost.topStatements
    .map((s) => `<tr><td class="n">${num(s.execUsPerConversion, 1)}</td><td class="n">${num(s.callsPerConversion, 3)}</td><td class="n">${num(s.rowsPerConversion, 3)}</td><td class="n">${fmtInt(s.walBytesPerConversion)}</td><td><code>${esc(s.query)}</code></td></tr>`)
    .join('');
  return (
    `<h3>${esc(title)}</h3><ul class="checks">` +
    pgCostLines({ ...cost, topStatements: [] }, 'text').map((l) => `<li>${esc(l.replace(/^- /, ''))}</li>`).join('') +
    '</ul>' +
    (statements ? `<table><thead><tr><th>exec µs</th><th>calls</th><th>rows</th><th>WAL B</th><th>statement (per conversion)</th></tr></thead><tbody>${statements}</tbody></table>` : '')
  );
}
