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
  repeat: Run;
  idle: Measurement;
  busy: Measurement;
  runsDuringLoad: number[];
};

type Options = { linearGoal: number; intakeGoal: number; database: string; durationS: number; connections: number; quietWaitS: number };

export async function writeReconcileResults(results: ScaleResult[], o: Options): Promise<string[]> {
  const base = results.find((r) => r.scale === 1) ?? results[0];
  const top = results[results.length - 1];
  const ratio = base && top && base !== top ? top.first.ms / base.first.ms : undefined;
  const repeatRatio = base && top && base !== top ? top.repeat.ms / base.repeat.ms : undefined;
  const goals = [
    ...(ratio === undefined ? [] : [{ goal: `first run at ${top?.scale}× ≤ ${o.linearGoal}× the 1× time`, actual: round(ratio), pass: ratio <= o.linearGoal }]),
    ...(repeatRatio === undefined ? [] : [{ goal: `repeat run at ${top?.scale}× ≤ ${o.linearGoal}× the 1× time`, actual: round(repeatRatio), pass: repeatRatio <= o.linearGoal }]),
    ...results.map((r) => {
      const k = r.idle.rps > 0 ? r.busy.rps / r.idle.rps : 0;
      return { goal: `intake during runs at ${r.scale}× ≥ ${o.intakeGoal}× idle`, actual: round(k), pass: k >= o.intakeGoal };
    }),
  ];
  const raw = { date: new Date().toISOString(), machine: machineInfo(), options: o, goals, results };
  await mkdir(RESULTS_DIR, { recursive: true });
  const json = path.join(RESULTS_DIR, 'reconcile.json');
  const md = path.join(RESULTS_DIR, 'reconcile.md');
  await writeFile(json, JSON.stringify(raw, null, 2) + '\n');
  const m = raw.machine;
  const lines = [
    '# Benchmark: reconciliation',
    '',
    `${raw.date}. ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, ${m.platform}, Node ${m.node}; ${o.database}.`,
    'One engine process (`src/main.ts`, production settings, cron off); data generated in PostgreSQL; runs started through `POST /v1/reconciliations`.',
    'Run: `npx tsx reports/bench/reconcile.ts`.',
    '',
    '## Time per run (72-hour window)',
    '',
    '| scale | clicks | conversions | pixel events | pixel-only | first run ms | repeat run ms | first run steps (ms) | other cores (first / repeat) |',
    '|---:|---:|---:|---:|---:|---:|---:|---|---|',
    ...results.map(
      (r) =>
        `| ${r.scale}× | ${fmtInt(r.shape.clicks)} | ${fmtInt(r.shape.conversions)} | ${fmtInt(r.shape.pixels)} | ${fmtInt(r.shape.pixelOnly)} | ${fmtInt(r.first.ms)} | ${fmtInt(r.repeat.ms)} | ${Object.entries(r.first.stepMs).map(([k, v]) => `${k} ${v}`).join(', ')} | ${r.first.cpu?.otherCores ?? 'n/a'} / ${r.repeat.cpu?.otherCores ?? 'n/a'} |`,
    ),
    '',
    'First-run totals: ' + results.map((r) => `${r.scale}× ${JSON.stringify(r.first.totals)}`).join('; ') + '.',
    '',
    `## Postback intake while runs are in progress (${o.connections} connections, ${o.durationS} s each)`,
    '',
    'Distinct signed GET postbacks (the intake benchmark\'s load). "Runs in progress": reconciliation runs over the same window back to back for the whole measurement (repeats: the same scans, nothing left to recover or re-fire).',
    '',
    '| scale | idle req/s | p99 ms | during runs req/s | p99 ms | ratio | runs during the load (ms each) | cores idle: engine / postgres / client / other | cores during runs |',
    '|---:|---:|---:|---:|---:|---:|---|---|---|',
    ...results.map((r) => `| ${r.scale}× | ${fmtInt(r.idle.rps)} | ${fmtMs(r.idle.latencyMs.p99)} | ${fmtInt(r.busy.rps)} | ${fmtMs(r.busy.latencyMs.p99)} | ${round(r.busy.rps / (r.idle.rps || 1))} | ${r.runsDuringLoad.map(fmtInt).join(', ')} | ${cpuText(r.idle)} | ${cpuText(r.busy)} |`),
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
