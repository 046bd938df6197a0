import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REPORTS_DIR } from '../src/reconcile/reconciler.js';
import { ADMIN } from './helpers/engine.js';
import { runReconcileCli, spawnEngine, type EngineProcess } from './helpers/process.js';

/**
 * `npm run reconcile` without DATABASE_URL while `npm start` runs on the same DATA_DIR: the CLI must
 * use the engine's embedded PostgreSQL, not start a second one (which would stop the engine's).
 */

let engine: EngineProcess | undefined;
let dataDir: string | undefined;
let runId: string | undefined;

afterAll(async () => {
  if (engine) {
    engine.child.kill('SIGTERM');
    await engine.exited;
  }
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
  for (const ext of ['csv', 'html']) if (runId) await rm(path.join(REPORTS_DIR, `reconciliation-${runId}.${ext}`), { force: true });
});

describe('npm run reconcile on the embedded PostgreSQL', () => {
  it('runs against the running engine’s server and leaves the engine serving', async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'pbe-cli-'));
    // As root, PostgreSQL runs as a `postgres` user that must be able to enter the directory.
    await chmod(dataDir, 0o755);
    engine = await spawnEngine({ DATA_DIR: dataDir, ADMIN_TOKEN: ADMIN });
    await engine.ready(90_000);

    const to = new Date();
    const from = new Date(to.getTime() - 3600_000);
    const out = await runReconcileCli({ DATA_DIR: dataDir }, ['--from', from.toISOString(), '--to', to.toISOString(), '--json']);
    expect(out.code, out.stderr).toBe(0);
    expect(out.stderr).toContain("the engine's embedded PostgreSQL");
    const run = JSON.parse(out.stdout) as { id: string; trigger: string };
    runId = run.id;
    expect(run.trigger).toBe('cli');

    // Same database: the engine's API sees the CLI's run; and the engine's database is still up.
    const res = await fetch(`${engine.url}/v1/reconciliations/${run.id}`, { headers: { authorization: `Bearer ${ADMIN}` } });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { trigger: string }).trigger).toBe('cli');
    expect((await fetch(`${engine.url}/readyz`)).status).toBe(200);
  }, 180_000);
});
