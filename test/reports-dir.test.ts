import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REPORTS_DIR } from '../src/reconcile/reconciler.js';
import { freshDatabase, type TestDatabase } from './helpers/db.js';
import { runReconcileCli } from './helpers/process.js';

/**
 * REPORTS_DIR: where `npm run reconcile` (`node dist/reconcile/cli.js` in the production image, whose
 * code directory is read-only to the engine's user) leaves each run's CSV and HTML report.
 */

let db: TestDatabase | undefined;
let dir: string | undefined;

afterAll(async () => {
  await db?.drop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('REPORTS_DIR', () => {
  it("receives the command line's report files, and the repository's reports/ none of them", async () => {
    db = await freshDatabase();
    dir = await mkdtemp(path.join(os.tmpdir(), 'pbe-reports-'));
    const to = new Date();
    const from = new Date(to.getTime() - 3600_000);
    const out = await runReconcileCli({ DATABASE_URL: db.url, REPORTS_DIR: dir }, ['--from', from.toISOString(), '--to', to.toISOString(), '--json']);
    expect(out.code, out.stderr).toBe(0);
    const run = JSON.parse(out.stdout) as { id: string };
    expect((await readdir(dir)).sort()).toEqual([`reconciliation-${run.id}.csv`, `reconciliation-${run.id}.html`]);
    expect(await readFile(path.join(dir, `reconciliation-${run.id}.csv`), 'utf8')).toMatch(/^\S+/);
    for (const ext of ['csv', 'html']) expect(existsSync(path.join(REPORTS_DIR, `reconciliation-${run.id}.${ext}`))).toBe(false);
    const [stored] = await db.sql`select id from reconciliation_runs`;
    expect(stored?.id).toBe(run.id);
  }, 120_000);
});
