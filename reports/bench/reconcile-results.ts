import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { CpuSplit } from './cpu-usage.js';
import type { Measurement } from './load.js';
import { fmtInt, fmtMs } from './progress.js';
import type { DataShape } from './reconcile-data.js';
import { cpuText, machineInfo, RESULTS_DIR } from './results.js';

/** The reconciliation benchmark's figures as `results/reconcile.json` (raw) and `results/reconcile.md` (for people). */

type Run = { id: string; totals: Record<string, number>; stepMs: Record<string, number>; ms: number; cpu?: CpuSplit };

export type ScaleResult = {
  scale: number;
  shape: DataShape;
  generateS: number;
  window: { from: string; to: string };
  first: Run;
  /** The median of `repeats`. */
  repeat: Run;
  repeats: Run[];
  idle: Measurement[];
  busy: Measurement[];
  runsDuringLoad: number[];
};

type Options = {
  linearGoal: number;
  intakeGoal: number;
  database: string;
  label: string | undefined;
  durationS: number;
  connections: number;
  quietWaitS: number;
  pairs: number;
};

const rpsOf = (ms: Measurement[]) => ms.reduce((n, m) => n + m.rps, 0) / Math.max(1, ms.length);
const intakeRatio = (r: ScaleResult) => rpsOf(r.busy) / (rpsOf(r.idle) || 1);

export async function writeReconcileResults(results: ScaleResult[], o: Options): Promise<string[]> {
  const base = results.find((r) => r.scale === 1) ?? results[0];
  const top = results[results.length - 1];
  const ratio = base && top && base !== top ? top.first.ms / base.first.ms : undefined;
  const repeatRatio = base && top && base !== top ? top.repeat.ms / base.repeat.ms : undefined;
  const goals = [
    ...(ratio === undefined ? [] : [{ goal: `first run at ${top?.scale}× ≤ ${o.linearGoal}× the 1× time`, actual: round(ratio), pass: ratio <= o.linearGoal }]),
    ...(repeatRatio === undefined ? [] : [{ goal: `repeat run at ${top?.scale}× ≤ ${o.linearGoal}× the 1× time`, actual: round(repeatRatio), pass: repeatRatio <= o.linearGoal }]),
    ...results.map((r) => {
      const k = intakeRatio(r);
      return { goal: `intake during runs at ${r.scale}× ≥ ${o.intakeGoal}× idle`, actual: round(k), pass: k >= o.intakeGoal };
    }),
  ];
  const raw = { date: new Date().toISOString(), machine: machineInfo(), options: o, goals, results };
  await mkdir(RESULTS_DIR, { recursive: true });
  const name = o.label ? `reconcile-${o.label.replace(/[^a-z0-9-]/gi, '')}` : 'reconcile';
  const json = path.join(RESULTS_DIR, `${name}.json`);
  const md = path.join(RESULTS_DIR, `${name}.md`);
  await writeFile(json, JSON.stringify(raw, null, 2) + '\n');
  const m = raw.machine;
  const lines = [
    '# Benchmark: reconciliation',
    '',
    `${raw.date}. ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, ${m.platform}, Node ${m.node}; ${o.database}.`,
    'One engine process (`src/main.ts`, production settings, cron off); data generated in PostgreSQL; runs started through `POST /v1/reconciliations`.',
    `Run: \`${['npx tsx reports/bench/reconcile.ts', ...process.argv.slice(2)].join(' ')}\`.`,
    '',
    '## Time per run (72-hour window)',
    '',
    '| scale | clicks | conversions | pixel events | pixel-only | first run ms | repeat run ms (median; all) | first run: working ms per step | other cores (first / median repeat) |',
    '|---:|---:|---:|---:|---:|---:|---:|---|---|',
    ...results.map(
      (r) =>
        `| ${r.scale}× | ${fmtInt(r.shape.clicks)} | ${fmtInt(r.shape.conversions)} | ${fmtInt(r.shape.pixels)} | ${fmtInt(r.shape.pixelOnly)} | ${fmtInt(r.first.ms)} | ${fmtInt(r.repeat.ms)}; ${r.repeats.map((x) => fmtInt(x.ms)).join(', ')} | ${Object.entries(r.first.stepMs).map(([k, v]) => `${k} ${v}`).join(', ')} | ${r.first.cpu?.otherCores ?? 'n/a'} / ${r.repeat.cpu?.otherCores ?? 'n/a'} |`,
    ),
    '',
    'A run rests twice as long as it works (src/reconcile/steps.ts), so its wall time is about three times the sum of its working milliseconds. "Other cores": CPU used meanwhile by processes outside the bench (0 on a quiet machine).',
    '',
    'First-run totals: ' + results.map((r) => `${r.scale}× ${JSON.stringify(r.first.totals)}`).join('; ') + '.',
    '',
    `## Postback intake while runs are in progress (${o.connections} connections, ${o.durationS} s each, ${o.pairs} idle/busy pairs)`,
    '',
    'Distinct signed GET postbacks (the intake benchmark\'s load). "Runs in progress": reconciliation runs over the same window back to back for the whole measurement (repeats: the same scans, nothing left to recover or re-fire).',
    '',
    '| scale | pair | idle req/s | p99 ms | during runs req/s | p99 ms | cores idle: engine / postgres / client / other | cores during runs |',
    '|---:|---:|---:|---:|---:|---:|---|---|',
    ...results.flatMap((r) =>
      r.idle.map((idle, i) => {
        const busy = r.busy[i] as Measurement;
        return `| ${r.scale}× | ${i + 1} | ${fmtInt(idle.rps)} | ${fmtMs(idle.latencyMs.p99)} | ${fmtInt(busy.rps)} | ${fmtMs(busy.latencyMs.p99)} | ${cpuText(idle)} | ${cpuText(busy)} |`;
      }),
    ),
    '',
    ...results.map((r) => `- ${r.scale}×: ratio ${round(intakeRatio(r))}; runs during the load took ${r.runsDuringLoad.map(fmtInt).join(', ')} ms.`),
    '',
    '## Goals',
    '',
    '| goal | actual | result |',
    '|---|---:|---|',
    ...goals.map((g) => `| ${g.goal} | ${g.actual} | ${g.pass ? 'PASS' : '**FAIL**'} |`),
    '',
  ];
  await writeFile(md, lines.join('\n'));
  return [json, md];
}

const round = (v: number) => Math.round(v * 100) / 100;
