import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { capsCostSection, isCapsCostResult, type CapsCostResult } from './caps-cost-report.js';
import { fraudScoringSection, isFraudScoringResult, type FraudScoringResult } from './fraud-scoring-report.js';
import { goalsSection, isGoalsSummary, type GoalsSummary } from './goals.js';
import { pgCostHtml } from './pg-cost-report.js';
import { isProcessesResult, processesSection } from './processes-report.js';
import type { ProcessesResult } from './scenario-processes.js';
import type { Measurement } from './load.js';
import { fmtInt, fmtMs } from './progress.js';
import { cpuText, DEFAULT_CONNECTIONS, RESULTS_DIR, type ScenarioResult } from './results.js';

/**
 * reports/bench/index.html, drawn from every results/*.json: per scenario, a bar chart of served
 * req/s (with each goal as a dashed mark) and one of p50/p99 latency, then the figures and checks.
 * One self-contained file: inline SVG and CSS, no script, nothing fetched from the network.
 */

export const INDEX_HTML = path.join(RESULTS_DIR, '..', 'index.html');

const COLORS = { baseline: '#7b8794', pass: '#2f855a', fail: '#c53030', p50: '#4a90c2', p99: '#1f4e79', goal: '#b7791f' };
const LABEL_W = 300;
const BAR_W = 380;
const VALUE_W = 150;
const ROW_H = 30;

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

type Bar = { label: string; value: number; text: string; color: string; goal?: number; goalText?: string };

function barChart(title: string, bars: Bar[], unit: string, extraMax = 0): string {
  const max = Math.max(extraMax, ...bars.map((b) => b.value), ...bars.map((b) => b.goal ?? 0)) * 1.08 || 1;
  const height = bars.length * ROW_H + 50;
  const x = (v: number) => LABEL_W + (v / max) * BAR_W;
  const step = niceStep(max / 5);
  const ticks: string[] = [];
  for (let v = step; v < max; v += step) {
    const label = v >= 1000 ? `${fmtInt(v / 1000)}k` : String(Math.round(v * 100) / 100);
    ticks.push(
      `<line x1="${x(v)}" x2="${x(v)}" y1="24" y2="${height - 22}" stroke="#e2e8f0"/>` +
        `<text x="${x(v)}" y="${height - 8}" text-anchor="middle" class="axis">${label}</text>`,
    );
  }
  const rows = bars.map((b, i) => {
    const y = 30 + i * ROW_H;
    const goal =
      b.goal !== undefined
        ? `<line x1="${x(b.goal)}" x2="${x(b.goal)}" y1="${y - 3}" y2="${y + ROW_H - 5}" stroke="${COLORS.goal}" stroke-width="2" stroke-dasharray="4 3"><title>${esc(b.goalText ?? '')}</title></line>`
        : '';
    // A label followed by an unlabelled bar names the pair, so it sits between them.
    const labelY = bars[i + 1]?.label === '' ? y + ROW_H / 2 + 15 : y + 15;
    return (
      `<text x="${LABEL_W - 8}" y="${labelY}" text-anchor="end" class="lbl">${esc(b.label)}</text>` +
      `<rect x="${LABEL_W}" y="${y}" width="${Math.max(1, x(b.value) - LABEL_W)}" height="${ROW_H - 8}" fill="${b.color}" rx="2"><title>${esc(b.text)}</title></rect>` +
      goal +
      `<text x="${x(b.value) + 6}" y="${y + 15}" class="val" paint-order="stroke" stroke="#fff" stroke-width="3">${esc(b.text)}</text>`
    );
  });
  return (
    `<figure><svg viewBox="0 0 ${LABEL_W + BAR_W + VALUE_W} ${height}" width="${LABEL_W + BAR_W + VALUE_W}" role="img" aria-label="${esc(title)}">` +
    `<text x="0" y="16" class="ttl">${esc(title)}</text>` +
    ticks.join('') +
    `<line x1="${LABEL_W}" x2="${LABEL_W}" y1="24" y2="${height - 22}" stroke="#999"/>` +
    rows.join('') +
    `<text x="${LABEL_W - 8}" y="${height - 8}" text-anchor="end" class="axis">${esc(unit)}</text>` +
    `</svg></figure>`
  );
}

/** 1, 2, 2.5 or 5 times a power of ten, at least `raw`. */
function niceStep(raw: number): number {
  const p = 10 ** Math.floor(Math.log10(raw || 1));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= raw) return m * p;
  return 10 * p;
}

function throughputChart(r: ScenarioResult): string {
  const base = (label: string, m: Measurement): Bar => ({
    label,
    value: m.rps,
    text: `${fmtInt(m.rps)} req/s  ${(m.rps / r.baselineRps).toFixed(2)}×`,
    color: COLORS.baseline,
  });
  const bars: Bar[] = [base('hello-world, before (baseline)', r.baseline), base('hello-world, after (baseline)', r.baselineAfter)];
  for (const run of r.runs) {
    const ratioGoal = run.goals.find((g) => g.comparison === '>=');
    const pass = run.goals.every((g) => g.pass);
    bars.push({
      label: `${run.name} (${run.variant})`,
      value: run.measurement.rps,
      text: `${fmtInt(run.measurement.rps)} req/s  ${run.ratio.toFixed(2)}×`,
      color: pass ? COLORS.pass : COLORS.fail,
      ...(ratioGoal ? { goal: ratioGoal.threshold * (ratioGoal.reference?.rps ?? r.baselineRps), goalText: `goal: ${ratioGoal.description}` } : {}),
    });
  }
  return barChart(`Served requests per second; ratios to the baselines' mean, ${fmtInt(r.baselineRps)} req/s (dashed: goal, relative to the floor)`, bars, 'req/s');
}

function latencyChart(r: ScenarioResult): string {
  const targets: { label: string; m: Measurement }[] = [
    { label: 'hello-world, before', m: r.baseline },
    { label: 'hello-world, after', m: r.baselineAfter },
  ];
  for (const run of r.runs) targets.push({ label: `${run.name} (${run.variant})`, m: run.measurement });
  const bars: Bar[] = targets.flatMap((t) => [
    { label: t.label, value: t.m.latencyMs.p50, text: `p50 ${fmtMs(t.m.latencyMs.p50)} ms`, color: COLORS.p50 },
    { label: '', value: t.m.latencyMs.p99, text: `p99 ${fmtMs(t.m.latencyMs.p99)} ms`, color: COLORS.p99 },
  ]);
  return barChart('Latency, p50 and p99', bars, 'ms');
}

function table(r: ScenarioResult): string {
  const row = (label: string, m: Measurement, ratio: string, goals: string) =>
    `<tr><td>${esc(label)}</td><td class="n">${fmtInt(m.rps)}</td><td class="n">${fmtMs(m.latencyMs.p50)}</td><td class="n">${fmtMs(m.latencyMs.p99)}</td>` +
    `<td class="n">${fmtMs(m.latencyMs.max)}</td><td class="n">${ratio}</td><td class="n">${esc(cpuText(m))}</td><td>${esc(Object.entries(m.statusCodes).map(([c, n]) => `${c}: ${fmtInt(n)}`).join(', '))}${m.errors ? esc(`; errors ${m.errors}`) : ''}</td><td>${goals}</td></tr>`;
  const goalText = (goals: ScenarioResult['runs'][number]['goals']) =>
    goals.map((g) => `<span class="${g.pass ? 'pass' : 'fail'}">${g.pass ? 'PASS' : 'FAIL'}</span> ${esc(g.description)} (${g.actual})`).join('<br>');
  return (
    '<table><thead><tr><th>target</th><th>req/s</th><th>p50 ms</th><th>p99 ms</th><th>max ms</th><th>× baseline</th><th>cores: server / pg / client / other</th><th>answers</th><th>goals</th></tr></thead><tbody>' +
    row('hello-world, before', r.baseline, (r.baseline.rps / r.baselineRps).toFixed(2), '') +
    row('hello-world, after', r.baselineAfter, (r.baselineAfter.rps / r.baselineRps).toFixed(2), '') +
    r.runs.map((run) => row(`${run.name} (${run.variant})`, run.measurement, run.ratio.toFixed(2), goalText(run.goals))).join('') +
    '</tbody></table>'
  );
}

function checks(r: ScenarioResult): string {
  if (r.checks.length === 0) return '';
  return (
    '<h3>Checks</h3><ul class="checks">' +
    r.checks.map((c) => `<li><span class="${c.pass ? 'pass' : 'fail'}">${c.pass ? 'ok' : 'MISMATCH'}</span> ${esc(c.description)}: expected ${esc(c.expected)}, actual ${esc(c.actual)}</li>`).join('') +
    '</ul>'
  );
}

function details(r: ScenarioResult): string {
  const runs = r.runs.filter((run) => run.details && Object.keys(run.details).length > 0);
  if (runs.length === 0) return '';
  const value = (v: number | string) => (typeof v === 'number' && Number.isInteger(v) ? fmtInt(v) : String(v));
  return (
    '<h3>Details</h3><ul class="checks">' +
    runs
      .map((run) => `<li><b>${esc(`${run.name} (${run.variant})`)}</b>: ${esc(Object.entries(run.details ?? {}).map(([k, v]) => `${k} ${value(v)}`).join(', '))}</li>`)
      .join('') +
    '</ul>'
  );
}

function profiles(r: ScenarioResult): string {
  return r.profiles
    .map(
      (p) =>
        `<details><summary>CPU profile: ${esc(p.label)} (${esc(p.file)}, ${p.idlePct.toFixed(1)}% idle)</summary><table><thead><tr><th>self %</th><th>function</th><th>where</th></tr></thead><tbody>` +
        p.topFunctions.map((f) => `<tr><td class="n">${f.selfPct.toFixed(1)}</td><td><code>${esc(f.name)}</code></td><td>${esc(f.where)}</td></tr>`).join('') +
        '</tbody></table></details>',
    )
    .join('');
}

function section(r: ScenarioResult): string {
  const m = r.machine;
  return (
    `<section><h2>${esc(r.scenario)}${r.options.connections === DEFAULT_CONNECTIONS ? '' : `, ${r.options.connections} connections`}${r.status === 'ok' ? '' : ` <small class="fail">${esc(r.status)}</small>`}</h2>` +
    `<p class="meta">${esc(r.date)} · ${esc(m.cpu)}, ${m.cores} cores, ${m.memoryGiB} GiB · Node ${esc(m.node)} · ${r.options.connections} connections, ${r.options.durationS} s per run after ${r.options.warmupS} s warm-up · ${esc(r.database)}</p>` +
    (r.note ? `<p class="note">${esc(r.note)}</p>` : '') +
    throughputChart(r) +
    latencyChart(r) +
    table(r) +
    checks(r) +
    details(r) +
    r.runs.map((run) => (run.pgCost ? pgCostHtml(`PostgreSQL per durable conversion: ${run.name} (${run.variant})`, run.pgCost) : '')).join('') +
    profiles(r) +
    '</section>'
  );
}

/** Other benches write their own shapes into results/; only ratio-benchmark files are drawn here. */
function isScenarioResult(x: unknown): x is ScenarioResult {
  const r = x as Partial<ScenarioResult> | null;
  return (
    typeof r === 'object' && r !== null && typeof r.scenario === 'string' && Array.isArray(r.runs) &&
    typeof r.baseline?.rps === 'number' && typeof r.baselineAfter?.rps === 'number' && typeof r.baselineRps === 'number'
  );
}

export async function writeIndexHtml(): Promise<string> {
  const files = (await readdir(RESULTS_DIR).catch(() => [] as string[])).filter((f) => f.endsWith('.json')).sort();
  const results: ScenarioResult[] = [];
  const capsCost: CapsCostResult[] = [];
  const goals: GoalsSummary[] = [];
  const processes: ProcessesResult[] = [];
  const fraudScoring: FraudScoringResult[] = [];
  const others: string[] = [];
  for (const f of files) {
    const parsed: unknown = JSON.parse(await readFile(path.join(RESULTS_DIR, f), 'utf8'));
    if (isScenarioResult(parsed)) results.push(parsed);
    else if (isGoalsSummary(parsed)) goals.push(parsed);
    else if (isProcessesResult(parsed)) processes.push(parsed);
    else if (isCapsCostResult(parsed)) capsCost.push(parsed);
    else if (isFraudScoringResult(parsed)) fraudScoring.push(parsed);
    else others.push(f);
  }
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>postback-engine benchmarks</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;color:#1a202c;max-width:900px;margin:2em auto;padding:0 1em}
h1{font-size:1.5em}h2{border-bottom:1px solid #e2e8f0;padding-bottom:.2em;margin-top:2em}
.meta{color:#4a5568}.note{background:#fffbea;border-left:3px solid #b7791f;padding:.5em .8em}
figure{margin:1em 0;overflow-x:auto}svg text{font:12px system-ui,sans-serif}svg .ttl{font-weight:600;font-size:13px}svg .val{fill:#2d3748}svg .axis{fill:#718096}
table{border-collapse:collapse;margin:1em 0;width:100%}th,td{border-bottom:1px solid #e2e8f0;padding:.3em .5em;text-align:left;vertical-align:top}td.n{text-align:right;font-variant-numeric:tabular-nums}
.pass{color:#2f855a;font-weight:600}.fail{color:#c53030;font-weight:600}.checks{padding-left:1.2em}code{font-size:12px}
</style></head><body>
<h1>postback-engine benchmarks</h1>
<p>Each engine figure is a ratio to a bare fastify hello-world measured in the same run on the same machine, each server in its own process, with autocannon as the client. Regenerate with <code>npm run bench</code>.</p>
${goals.map(goalsSection).join('\n')}
${results.length === 0 ? '<p>No results yet.</p>' : results.map(section).join('\n')}
${processes.map(processesSection).join('\n')}
${capsCost.map((r) => capsCostSection(r, barChart)).join('\n')}
${fraudScoring.map((r) => fraudScoringSection(r, barChart)).join('\n')}
${others.length > 0 ? `<p class="meta">Other result files, drawn by their own tools: ${others.map((f) => `<code>results/${esc(f)}</code>`).join(', ')}.</p>` : ''}
</body></html>
`;
  await writeFile(INDEX_HTML, html);
  return INDEX_HTML;
}
