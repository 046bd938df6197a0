import { fmtInt } from './progress.js';
import type { Machine } from './results.js';

/**
 * The fraud-scoring bench's figures as people read them: results/fraud-scoring.md, and a section of
 * index.html (CPU per postback per variant, and what a node's memory holds against the AS table's
 * 64 MiB budget) drawn from results/fraud-scoring.json.
 */

export type ScoringFigures = {
  name: string;
  /** One postback at a time. */
  sequentialUs: number;
  sequentialCpuUs: number;
  /** `concurrency` postbacks in flight. */
  cpuUsPerPostback: number;
  throughput: number;
  /** The bench process's RSS after the variant's runs, garbage collected, its state still alive. */
  rssMiB: number;
};

export type TableCost = {
  version: string;
  loadMs: number;
  rssBeforeMiB: number;
  rssAfterMiB: number;
  addedMiB: { rss: number; heapUsed: number; arrayBuffers: number; external: number };
  budgetMiB: number;
};

export type FraudScoringResult = {
  bench: 'fraud-scoring';
  date: string;
  machine: Machine;
  loadAverage: { before: number[]; after: number[] };
  options: { postbacks: number; concurrency: number; repeats: number };
  table: TableCost;
  variants: ScoringFigures[];
  redis: { usedMemoryMiB: number; keys: number; postbacksScored: number; clicks: number } | null;
};

export function isFraudScoringResult(x: unknown): x is FraudScoringResult {
  const r = x as Partial<FraudScoringResult> | null;
  return typeof r === 'object' && r !== null && r.bench === 'fraud-scoring' && Array.isArray(r.variants) && typeof r.table?.addedMiB?.rss === 'number';
}

const loads = (l: number[]) => l.map((x) => x.toFixed(2)).join(' ');
const f1 = (x: number) => x.toFixed(1);
const withinBudget = (t: TableCost) => t.addedMiB.rss <= t.budgetMiB;

/** Each variant's CPU per postback (in flight) against the baseline's, as "+12.3 µs (+40 %)". */
function added(v: ScoringFigures, base: ScoringFigures | undefined): string {
  if (!base || v === base) return '—';
  const d = v.cpuUsPerPostback - base.cpuUsPerPostback;
  return `${d >= 0 ? '+' : ''}${f1(d)} µs (${d >= 0 ? '+' : ''}${((d / base.cpuUsPerPostback) * 100).toFixed(0)} %)`;
}

export function renderFraudScoringMarkdown(r: FraudScoringResult): string {
  const o = r.options;
  const t = r.table;
  const base = r.variants[0];
  return [
    '# Fraud scoring: time and memory per node',
    '',
    `${r.date}. ${r.machine.cpu}, ${r.machine.cores} cores, ${r.machine.memoryGiB} GiB, Node ${r.machine.node}. Load average (1, 5, 15 min) before ${loads(r.loadAverage.before)}, after ${loads(r.loadAverage.after)}.`,
    '',
    `The scorer in process (no HTTP), after warming its state with 50,000 clicks and 2,000 conversions; best of ${o.repeats} runs of ${fmtInt(o.postbacks)} postbacks each, one at a time and ${o.concurrency} in flight; the RSS is the process's after a full collection with the variant's state still alive (the memory state holds every click and conversion of the run). The first variant has no address database (datacenter_ip finds nothing): the same run's baseline for the table's cost.`,
    '',
    `| variant | one at a time: wall µs | one at a time: CPU µs | ${o.concurrency} in flight: CPU µs | added CPU vs baseline | ${o.concurrency} in flight: postbacks/s | process RSS after, collected (MiB) |`,
    '|---|---:|---:|---:|---:|---:|---:|',
    ...r.variants.map(
      (v) => `| ${v.name} | ${f1(v.sequentialUs)} | ${f1(v.sequentialCpuUs)} | ${f1(v.cpuUsPerPostback)} | ${added(v, base)} | ${fmtInt(v.throughput)} | ${f1(v.rssMiB)} |`,
    ),
    '',
    `## The IP-to-AS table (${t.version})`,
    '',
    `Loaded in a fresh \`node --expose-gc\` process that had imported the scorer and everything else, garbage collected before and after: ${t.loadMs.toFixed(0)} ms to load; RSS ${f1(t.rssBeforeMiB)} → ${f1(t.rssAfterMiB)} MiB, **+${f1(t.addedMiB.rss)} MiB** (heap +${f1(t.addedMiB.heapUsed)}, typed arrays +${f1(t.addedMiB.arrayBuffers)}, external +${f1(t.addedMiB.external)}). Budget ${t.budgetMiB} MiB per node: ${withinBudget(t) ? 'within' : '**OVER**'}.`,
    '',
    r.redis
      ? `Redis after the run: used_memory ${f1(r.redis.usedMemoryMiB)} MiB, ${fmtInt(r.redis.keys)} keys (${fmtInt(r.redis.postbacksScored)} postbacks scored, ${fmtInt(r.redis.clicks)} clicks).`
      : 'Redis was not measured (no redis-server and REDIS_URL unset).',
    '',
    `Regenerate with \`npx tsx reports/bench/fraud-scoring.ts --postbacks ${o.postbacks} --concurrency ${o.concurrency}\`; raw figures in \`fraud-scoring.json\`.`,
    '',
  ].join('\n');
}

type ChartBar = { label: string; value: number; text: string; color: string; goal?: number; goalText?: string };
type BarChart = (title: string, bars: ChartBar[], unit: string) => string;

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const SHADES = ['#7b8794', '#4a90c2', '#1f4e79'];

/** index.html's section for the fraud-scoring result, with the report's own bar chart function. */
export function fraudScoringSection(r: FraudScoringResult, chart: BarChart): string {
  const base = r.variants[0];
  const cpu = chart(
    `Scorer CPU per postback, ${r.options.concurrency} in flight (grey: the same run's baseline without an address database)`,
    r.variants.map((v, i) => ({ label: v.name, value: v.cpuUsPerPostback, text: `${f1(v.cpuUsPerPostback)} µs  ${added(v, base)}`, color: SHADES[i % SHADES.length] as string })),
    'µs',
  );
  const t = r.table;
  const memory = chart(
    `Memory per node: the AS table's added RSS in a fresh process (dashed: the ${t.budgetMiB} MiB budget), and each run's process RSS`,
    [
      { label: 'AS table, added RSS', value: t.addedMiB.rss, text: `+${f1(t.addedMiB.rss)} MiB`, color: withinBudget(t) ? '#2f855a' : '#c53030', goal: t.budgetMiB, goalText: `budget ${t.budgetMiB} MiB` },
      ...r.variants.map((v, i) => ({ label: `process RSS: ${v.name}`, value: v.rssMiB, text: `${f1(v.rssMiB)} MiB`, color: SHADES[i % SHADES.length] as string })),
    ],
    'MiB',
  );
  return (
    '<section><h2>fraud scoring</h2>' +
    `<p class="meta">${esc(r.date)} · ${esc(r.machine.cpu)}, ${r.machine.cores} cores · Node ${esc(r.machine.node)} · best of ${r.options.repeats} × ${fmtInt(r.options.postbacks)} postbacks · load average ${esc(loads(r.loadAverage.before))} → ${esc(loads(r.loadAverage.after))}</p>` +
    cpu +
    memory +
    `<p>${esc(t.version)}: loaded in ${t.loadMs.toFixed(0)} ms. ${r.redis ? esc(`Redis after the run: ${f1(r.redis.usedMemoryMiB)} MiB, ${fmtInt(r.redis.keys)} keys.`) : 'Redis not measured.'} Details in <code>results/fraud-scoring.md</code>.</p>` +
    '</section>'
  );
}
