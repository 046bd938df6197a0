import type { CpuSplit } from './cpu-usage.js';
import type { Measurement } from './load.js';
import { fmtInt, fmtMs } from './progress.js';
import type { Check, Machine } from './results.js';

/**
 * The caps bench's figures as people read them: results/caps-cost.md, and a section of index.html
 * (the same bar charts as the ratio benchmarks) drawn from results/caps-cost*.json.
 */

export type RoundFigures = {
  round: number;
  variant: string;
  served: number;
  responses: number;
  durationS: number;
  rps: number;
  latencyMs: Measurement['latencyMs'];
  cpu: CpuSplit | undefined;
  loadAverage1m: number;
  /** From the engine's postback_engine_commit_batch_postbacks histogram, over this round. */
  commitBatches: number;
};

export type OfferFigures = {
  variant: string;
  name: string;
  /** Offers with these terms loaded at the same time, each at full concurrency; figures are their sum. */
  offers: number;
  terms: Record<string, unknown>;
  served: number;
  /** Served postbacks over the summed duration of the offer's rounds. */
  rps: number;
  roundRps: number[];
  /** Percentiles over every response of the offer's rounds, pooled. */
  latencyMs: Measurement['latencyMs'];
  commitBatchesPerPostback: number;
  decisions: Record<string, number>;
  retried: number;
};

export type CapsCostResult = {
  bench: 'caps-cost';
  date: string;
  machine: Machine;
  loadAverage: { before: number[]; after: number[] };
  options: { postbacksPerOffer: number; concurrency: number; rounds: number; warmupPerOffer: number; saleAmount: string };
  database: string;
  offers: (OfferFigures & { ratioToPlain: number; ratioToCapped: number; addedUsPerPostback: number })[];
  rounds: RoundFigures[];
  checks: Check[];
};

export function isCapsCostResult(x: unknown): x is CapsCostResult {
  const r = x as Partial<CapsCostResult> | null;
  return typeof r === 'object' && r !== null && r.bench === 'caps-cost' && Array.isArray(r.offers) && Array.isArray(r.rounds);
}

const loads = (l: number[]) => l.map((x) => x.toFixed(2)).join(' ');
const cores = (c: CpuSplit | undefined) => (c ? `${c.serverCores} / ${c.postgresCores} / ${c.clientCores} / ${c.otherCores}` : 'n/a');

export function renderCapsCostMarkdown(r: CapsCostResult, stem: string): string {
  const o = r.options;
  const lines = [
    '# Cost of goals and caps on the postback intake',
    '',
    `${r.date}. ${r.machine.cpu}, ${r.machine.cores} cores, ${r.machine.memoryGiB} GiB, Node ${r.machine.node}; ${r.database}.`,
    `Load average (1, 5, 15 min) before ${loads(r.loadAverage.before)}, after ${loads(r.loadAverage.after)}.`,
    '',
    `One engine, one database, one advertiser, three offers. Each offer: ${fmtInt(o.postbacksPerOffer)} distinct signed GET postbacks (a new txid on its own click; alternately \`event=registration\` and \`event=sale&amount=${o.saleAmount}\`; no payout sent) at ${o.concurrency} connections, in ${o.rounds} rounds interleaved a, b, c, a, b, c..., after ${fmtInt(o.warmupPerOffer)} of warm-up each. (d) is two offers with (c)'s terms loaded at the same time, each at ${o.concurrency} connections: its figures are their sum. Latency percentiles pool every response of the offer's rounds.`,
    '',
    '| offer | postbacks/s | × plain | × (c) | added µs per postback | p50 ms | p99 ms | max ms | per round (postbacks/s) | group-commit batches per postback | decisions |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---|',
    ...r.offers.map(
      (f) =>
        `| ${f.name} | ${fmtInt(f.rps)} | ${f.ratioToPlain.toFixed(3)} | ${f.ratioToCapped.toFixed(2)} | ${f.addedUsPerPostback.toFixed(0)} | ${fmtMs(f.latencyMs.p50)} | ${fmtMs(f.latencyMs.p99)} | ${fmtMs(f.latencyMs.max)} | ${f.roundRps.join(', ')} | ${f.commitBatchesPerPostback.toFixed(2)} | ${Object.entries(f.decisions).map(([d, n]) => `${d} ${fmtInt(n)}`).join(', ')} |`,
    ),
    '',
    'Terms of each offer (payout 2.50 USD; fraud thresholds at 100, so every postback is accepted and every one on (c) takes a cap slot):',
    '',
    ...r.offers.map((f) => `- ${f.name}: \`${JSON.stringify(f.terms)}\``),
    '',
    '## Rounds',
    '',
    'Each round is timed from its first request to its last answer. Cores are averaged over autocannon\'s window, which ends at its next whole-second tick, so they understate a short round\'s load.',
    '',
    '| round | offer | postbacks/s | p50 ms | p99 ms | cores: engine / PostgreSQL / client / elsewhere | load 1 min |',
    '|---:|---|---:|---:|---:|---|---:|',
    ...r.rounds.map((x) => `| ${x.round} | ${x.variant} | ${fmtInt(x.rps)} | ${fmtMs(x.latencyMs.p50)} | ${fmtMs(x.latencyMs.p99)} | ${cores(x.cpu)} | ${x.loadAverage1m.toFixed(2)} |`),
    '',
    '## Checks',
    '',
    '| check | expected | actual | result |',
    '|---|---|---|---|',
    ...r.checks.map((c) => `| ${c.description} | ${c.expected} | ${c.actual} | ${c.pass ? 'ok' : '**MISMATCH**'} |`),
    '',
    `Regenerate with \`npx tsx reports/bench/caps-cost.ts --postbacks ${o.postbacksPerOffer} --concurrency ${o.concurrency} --rounds ${o.rounds}\`; raw figures in \`${stem}.json\`.`,
    '',
  ];
  return lines.join('\n');
}

export type ChartBar = { label: string; value: number; text: string; color: string };
export type BarChart = (title: string, bars: ChartBar[], unit: string) => string;

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const SHADES = ['#7b8794', '#4a90c2', '#1f4e79', '#2f855a'];

/** index.html's section for one caps-cost result, with the report's own bar chart function. */
export function capsCostSection(r: CapsCostResult, chart: BarChart): string {
  const throughput = chart(
    `Served postbacks per second, ${r.options.concurrency} connections (ratio to the plain offer)`,
    r.offers.map((f, i) => ({ label: f.name, value: f.rps, text: `${fmtInt(f.rps)}/s  ${f.ratioToPlain.toFixed(2)}×`, color: SHADES[i % SHADES.length] as string })),
    'postbacks/s',
  );
  const latency = chart(
    'Latency, p50 and p99, every response of the offer’s rounds',
    r.offers.flatMap((f) => [
      { label: f.name, value: f.latencyMs.p50, text: `p50 ${fmtMs(f.latencyMs.p50)} ms`, color: '#4a90c2' },
      { label: '', value: f.latencyMs.p99, text: `p99 ${fmtMs(f.latencyMs.p99)} ms`, color: '#1f4e79' },
    ]),
    'ms',
  );
  const failed = r.checks.filter((c) => !c.pass);
  return (
    `<section><h2>caps cost${r.options.concurrency === 10 ? '' : `, ${r.options.concurrency} connections`}</h2>` +
    `<p class="meta">${esc(r.date)} · ${esc(r.machine.cpu)}, ${r.machine.cores} cores · Node ${esc(r.machine.node)} · ${fmtInt(r.options.postbacksPerOffer)} postbacks per offer in ${r.options.rounds} interleaved rounds · load average ${esc(loads(r.loadAverage.before))} → ${esc(loads(r.loadAverage.after))}</p>` +
    throughput +
    latency +
    `<p>${failed.length === 0 ? `<span class="pass">ok</span> all ${r.checks.length} checks against PostgreSQL` : `<span class="fail">MISMATCH</span> ${esc(failed.map((c) => c.description).join('; '))}`}. Details in <code>results/caps-cost.md</code>.</p>` +
    '</section>'
  );
}
