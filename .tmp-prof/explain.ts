import { connect } from '../src/db/database.js';
import { recordRootCauses } from '../src/reconcile/root-causes.js';
import { recoverPixelOnly } from '../src/reconcile/recovery.js';
import { refireDeliveries, expireDeliveries } from '../src/reconcile/refire.js';
import { compareWindow } from '../src/reconcile/window.js';

const url = process.argv[2] as string;
const only = process.argv[3];
const sql = connect(url, { max: 1, onnotice: (n: any) => console.log(n.message) });
await sql`load 'auto_explain'`;
await sql`set auto_explain.log_min_duration = 0`;
await sql`set auto_explain.log_analyze = true`;
await sql`set auto_explain.log_buffers = true`;
await sql`set auto_explain.log_level = 'notice'`;
await sql`set auto_explain.log_nested_statements = false`;
await sql`set max_parallel_workers_per_gather = 0`;
await sql`set work_mem = '64MB'`;
const id = 'rec_prof_' + Date.now();
const to = new Date(); const from = new Date(to.getTime() - 72 * 3600_000);
await sql`insert into reconciliation_runs (id, window_from, window_to, trigger, state) values (${id}, ${from}, ${to}, 'cli', 'running')`;
const w = { from, to };
const steps: [string, () => Promise<unknown>][] = [
  ['rootCauses', () => recordRootCauses(sql, id, w, 1800)],
  ['recovery', () => recoverPixelOnly(sql, id, 1800)],
  ['refire', () => refireDeliveries(sql, id, w)],
  ['expiry', () => expireDeliveries(sql, id, w)],
  ['comparison', () => compareWindow(sql, id, w)],
];
for (const [name, f] of steps) {
  if (only && only !== name) continue;
  const t0 = performance.now();
  await f();
  console.log('=====', name, Math.round(performance.now() - t0), 'ms');
}
await sql.end();
