import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { CpuProbe } from './cpu-usage.js';
import { runLoad } from './load.js';
import { startServer } from './processes.js';
import { fmtInt, phase } from './progress.js';
import { RESULTS_DIR } from './results.js';

/**
 * `npx tsx reports/bench/work-amplification.ts [--duration 5] [--connections 10]`
 *
 * A fastify 302 route doing 0, 10, 20 and 30 µs of busy work per request, each in its own process
 * against the same load as the ratio benchmarks. Prints req/s and the wall time each request costs
 * (1/throughput): where that grows by more than the work added, a microsecond of engine work costs
 * more than a microsecond of throughput on this machine (the less busy load generator must be woken
 * up for each answer). Writes results/work-amplification.md; the ratio benchmarks are `npm run bench`.
 */

const { values } = parseArgs({ options: { duration: { type: 'string', default: '5' }, connections: { type: 'string', default: '10' } } });
const durationS = Number(values.duration);
const connections = Number(values.connections);
const SPINS_US = [0, 10, 20, 30];

const rows: { spinUs: number; rps: number; usPerRequest: number; serverCores: number; clientCores: number }[] = [];
for (const spinUs of SPINS_US) {
  phase(`spin ${spinUs} µs: starting reports/bench/spin-server.ts`);
  const server = await startServer({ name: `spin ${spinUs} µs`, nodeArgs: ['--import', 'tsx', 'reports/bench/spin-server.ts'], env: { SPIN_US: String(spinUs) }, readyPath: '/healthz' });
  try {
    const url = server.baseUrl + '/c/x?pub=y';
    await runLoad({ label: `warm-up spin ${spinUs} µs`, url, connections, durationS: 2, expectedStatus: 302 });
    const m = await runLoad({ label: `measure spin ${spinUs} µs`, url, connections, durationS, expectedStatus: 302, cpu: new CpuProbe(server.pid, undefined) });
    rows.push({ spinUs, rps: m.rps, usPerRequest: 1e6 / m.rps, serverCores: m.cpu?.serverCores ?? NaN, clientCores: m.cpu?.clientCores ?? NaN });
  } finally {
    await server.stop();
  }
}

const base = rows[0];
const lines = rows.map((r) => {
  const added = base ? r.usPerRequest - base.usPerRequest : 0;
  return { ...r, added, factor: r.spinUs > 0 ? `${(added / r.spinUs).toFixed(2)}×` : '—' };
});
process.stdout.write('\nwork per request   req/s    µs per request   added µs   added / work   cores: server / client\n');
for (const r of lines) {
  process.stdout.write(
    `${String(r.spinUs).padStart(8)} µs ${fmtInt(r.rps).padStart(12)} ${r.usPerRequest.toFixed(1).padStart(14)} ${r.added.toFixed(1).padStart(12)} ${r.factor.padStart(12)}   ${r.serverCores.toFixed(2)} / ${r.clientCores.toFixed(2)}\n`,
  );
}

const md = [
  '# What a µs of work per request costs in throughput',
  '',
  `${new Date().toISOString()}, ${os.cpus()[0]?.model.trim() ?? 'unknown CPU'} × ${os.cpus().length}, Node ${process.version}; ${connections} connections, ${durationS} s per run after 2 s of warm-up.`,
  'A fastify 302 route doing the given busy work per request (`spin-server.ts`), each in its own process, all in this run; the first row is the baseline.',
  '',
  '| work per request (µs) | req/s | µs per request (1/throughput) | added µs | added / work | cores: server / client |',
  '|---:|---:|---:|---:|---:|---|',
  ...lines.map((r) => `| ${r.spinUs} | ${fmtInt(r.rps)} | ${r.usPerRequest.toFixed(1)} | ${r.added.toFixed(1)} | ${r.factor} | ${r.serverCores.toFixed(2)} / ${r.clientCores.toFixed(2)} |`),
  '',
].join('\n');
await mkdir(RESULTS_DIR, { recursive: true });
const file = path.join(RESULTS_DIR, 'work-amplification.md');
await writeFile(file, md);
process.stdout.write(`\nwrote ${path.relative(process.cwd(), file)}\n`);
