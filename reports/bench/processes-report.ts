import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pgCostLines } from './pg-cost-report.js';
import { fmtInt, fmtMs } from './progress.js';
import { RESULTS_DIR } from './results.js';
import type { CpuPerAnswer, ProcessesResult } from './scenario-processes.js';

/** The processes scenario as console lines, `results/processes.{json,md}` and an index.html section. */

const us = (v: number | undefined) => (v === undefined ? 'n/a' : fmtInt(v));

function tableRows(r: ProcessesResult): string[][] {
  const one = r.runs.find((run) => run.processes === 1)?.distinct.rps;
  const cost = (c: CpuPerAnswer) => `${us(c.engineUs)} / ${us(c.postgresUs)} / ${us(c.redisUs)}`;
  return r.runs.map((run) => [
    String(run.processes),
    fmtInt(run.distinct.rps),
    one ? `${(run.distinct.rps / one).toFixed(2)}×` : '',
    `${fmtMs(run.distinct.latencyMs.p50)} / ${fmtMs(run.distinct.latencyMs.p99)}`,
    cost(run.perDistinct),
    fmtInt(run.duplicates.rps),
    cost(run.perDuplicate),
    run.checks.every((c) => c.pass) ? 'ok' : 'MISMATCH',
  ]);
}

const HEADER = ['processes', 'durable/s', '× 1 process', 'p50 / p99 ms', 'CPU µs per durable: engine / PostgreSQL / Redis', 'duplicates/s', 'CPU µs per duplicate: engine / PostgreSQL / Redis', 'checks'];

export function processesLines(r: ProcessesResult): string[] {
  if (r.note) return [`processes: ${r.note}`];
  const lines = [`== processes: WORKERS=n on one box, one PostgreSQL, one redis-server; ${r.options.connections} connections, ${r.options.durationS} s per run`];
  for (const row of tableRows(r)) {
    const [n, rps, x, lat, distinct, dups, dupCost, ok] = row;
    lines.push(`  ${n} process(es): ${rps} durable/s (${x}), p50/p99 ${lat} ms, CPU µs per durable engine/pg/redis ${distinct}; ${dups} duplicates/s, CPU µs each ${dupCost}; checks ${ok}`);
  }
  for (const c of r.checks.filter((c) => !c.pass)) lines.push(`  MISMATCH  ${c.description}: expected ${c.expected}, actual ${c.actual}`);
  return lines;
}

export function renderProcessesMarkdown(r: ProcessesResult): string {
  const lines = [
    '# Benchmark: engine processes per box',
    '',
    `${r.date}. ${r.machine.cpu}, ${r.machine.cores} cores, Node ${r.machine.node}. ${r.options.connections} connections, ${r.options.durationS} s per run after a ${r.options.warmupS} s warm-up; ${r.database}; one redis-server.`,
    '',
  ];
  if (r.note) return [...lines, `> ${r.note}`, ''].join('\n');
  lines.push(`| ${HEADER.join(' | ')} |`, `|${HEADER.map(() => '---:').join('|')}|`, ...tableRows(r).map((row) => `| ${row.join(' | ')} |`), '');
  for (const run of r.runs) lines.push(`## PostgreSQL per durable conversion, ${run.processes} process(es)`, '', ...pgCostLines(run.pgCost, 'markdown'), '');
  lines.push('## Checks', '', '| check | expected | actual | result |', '|---|---:|---:|---|');
  for (const c of r.checks) lines.push(`| ${c.description} | ${c.expected} | ${c.actual} | ${c.pass ? 'ok' : '**MISMATCH**'} |`);
  lines.push('', 'Regenerate with `npm run bench -- --scenario processes --processes ' + r.runs.map((run) => run.processes).join(',') + '`; raw figures in `processes.json`.', '');
  return lines.join('\n');
}

export async function writeProcesses(r: ProcessesResult): Promise<string[]> {
  await mkdir(RESULTS_DIR, { recursive: true });
  const json = path.join(RESULTS_DIR, 'processes.json');
  const md = path.join(RESULTS_DIR, 'processes.md');
  await writeFile(json, JSON.stringify(r, null, 2) + '\n');
  await writeFile(md, renderProcessesMarkdown(r));
  return [json, md];
}

export function isProcessesResult(x: unknown): x is ProcessesResult {
  const r = x as Partial<ProcessesResult> | null;
  return typeof r === 'object' && r !== null && r.scenario === 'processes' && Array.isArray(r.runs);
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export function processesSection(r: ProcessesResult): string {
  const head = `<section><h2>Engine processes per box</h2><p class="meta">${esc(r.date)} · ${esc(r.machine.cpu)}, ${r.machine.cores} cores · WORKERS=n, one PostgreSQL, one redis-server · ${r.options.connections} connections, ${r.options.durationS} s per run</p>`;
  if (r.note) return `${head}<p class="note">${esc(r.note)}</p></section>`;
  const rows = tableRows(r)
    .map((row) => `<tr>${row.map((cell, i) => `<td class="${i === row.length - 1 ? (cell === 'ok' ? 'pass' : 'fail') : 'n'}">${esc(cell)}</td>`).join('')}</tr>`)
    .join('');
  return `${head}<table><thead><tr>${HEADER.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows}</tbody></table></section>`;
}
