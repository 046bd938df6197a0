import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { connect } from '../src/db/database.js';
import { freePort } from '../src/net/free-port.js';
import { openCliDatabase } from '../src/reconcile/cli-database.js';
import { freshDatabase } from './helpers/db.js';

/**
 * The README's quickstart, run verbatim: its ```sh block says how the engine is started (run here as
 * `npm start` with its exports, minus `npm ci`, on a free PORT and a fresh DATA_DIR), and its ```bash
 * blocks run in order in one `bash` with `set -euo pipefail`. The last block must read the conversion
 * back, and the engine's embedded PostgreSQL must hold it. A README edit that breaks a step fails here.
 */

const BEGIN = '<!-- quickstart:begin -->';
const END = '<!-- quickstart:end -->';

type Block = { lang: string; code: string };

function quickstartBlocks(readme: string): Block[] {
  const start = readme.indexOf(BEGIN);
  const end = readme.indexOf(END);
  if (start === -1 || end === -1 || end < start) throw new Error(`README.md must hold ${BEGIN} ... ${END}`);
  const section = readme.slice(start + BEGIN.length, end);
  return [...section.matchAll(/^```(\w*)\n([\s\S]*?)^```$/gm)].map((m) => ({ lang: m[1] as string, code: m[2] as string }));
}

/** The start block may only install, export variables and run `npm start`; anything else needs this test updated. */
function startCommand(block: Block): { env: Record<string, string> } {
  const env: Record<string, string> = {};
  let starts = false;
  for (const raw of block.code.split('\n')) {
    const line = raw.replace(/\s+#.*$/, '').trim();
    if (line === '' || line === 'npm ci') continue;
    const assignment = /^export ([A-Z_][A-Z0-9_]*)=(\S+)$/.exec(line);
    if (assignment) {
      env[assignment[1] as string] = assignment[2] as string;
      continue;
    }
    if (line === 'npm start') {
      starts = true;
      continue;
    }
    throw new Error(`the quickstart's start block has a step this test does not know: ${line}`);
  }
  if (!starts) throw new Error('the quickstart start block must run npm start');
  return { env };
}

const curlMissing = spawnSync('curl', ['--version']).status !== 0;
if (curlMissing) {
  const message = 'curl not found: the README quickstart test is skipped. Install it with `apt-get install -y curl`.';
  if (process.env.CI) throw new Error(`${message} CI must not skip it.`);
  process.stderr.write(`\n${message}\n\n`);
}

type StartedEngine = { url: string; port: string; dataDir: string; output: () => string; stop: () => Promise<void> };
const started: StartedEngine[] = [];
afterAll(async () => {
  for (const engine of started) await engine.stop();
});

/** `npm start` as the README runs it, on a free PORT and a fresh DATA_DIR, with only the given variables. */
async function npmStart(env: Record<string, string>): Promise<StartedEngine> {
  const port = String(await freePort());
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'pbe-quickstart-'));
  // As root, the embedded PostgreSQL runs as a `postgres` user that must be able to enter it.
  await chmod(dataDir, 0o755);
  const child: ChildProcess = spawn('npm', ['start'], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? os.tmpdir(), ...env, PORT: port, DATA_DIR: dataDir },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let output = '';
  let engineExited = false;
  child.stdout?.on('end', () => (engineExited = true));
  // npm may exit before the engine it started; the engine is gone when nothing holds the output pipe
  // and its embedded PostgreSQL (if any) has removed its pid file.
  const engineRunning = () => !engineExited || existsSync(path.join(dataDir, 'pg', 'postmaster.pid'));
  child.stdout?.on('data', (d) => (output += d));
  child.stderr?.on('data', (d) => (output += d));
  const engine: StartedEngine = {
    url: `http://127.0.0.1:${port}`,
    port,
    dataDir,
    output: () => output,
    stop: async () => {
      if (child.pid !== undefined && child.exitCode === null) {
        // npm, its shell and the engine share the process group made for them; SIGTERM lets the engine
        // stop its embedded PostgreSQL before the directory is removed.
        process.kill(-child.pid, 'SIGTERM');
        const deadline = Date.now() + 30_000;
        while (engineRunning() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
        if (engineRunning()) process.kill(-child.pid, 'SIGKILL');
      }
      await rm(dataDir, { recursive: true, force: true });
    },
  };
  started.push(engine);
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`npm start exited before the engine was ready:\n${output}`);
    try {
      if ((await fetch(`${engine.url}/readyz`)).status === 200) return engine;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`engine not ready within 120 s:\n${output}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

function runBash(script: string, env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('bash', ['-c', script], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d) => (stdout += d));
    child.stderr?.on('data', (d) => (stderr += d));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

describe.skipIf(curlMissing)('the README quickstart', () => {
  it('runs verbatim: the signed postback is committed and read back', { timeout: 180_000 }, async () => {
    const blocks = quickstartBlocks(readFileSync('README.md', 'utf8'));
    const startBlocks = blocks.filter((b) => b.lang === 'sh');
    const steps = blocks.filter((b) => b.lang === 'bash');
    expect(startBlocks).toHaveLength(1);
    expect(steps.length).toBeGreaterThanOrEqual(6);
    const { env: startEnv } = startCommand(startBlocks[0] as Block);

    // Only the README's variables and the isolation this test needs: nothing from the developer's shell.
    const engine = await npmStart(startEnv);
    const base = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? os.tmpdir(), PORT: engine.port };

    const marker = (i: number) => `::quickstart-block-${i}::`;
    const script = ['set -euo pipefail', ...steps.flatMap((b, i) => [`echo '${marker(i)}'`, b.code])].join('\n');
    const run = await runBash(script, base);
    expect(run.code, `stdout:\n${run.stdout}\nstderr:\n${run.stderr}`).toBe(0);

    const outputOf = (i: number) => run.stdout.slice(run.stdout.indexOf(marker(i)) + marker(i).length, i + 1 < steps.length ? run.stdout.indexOf(marker(i + 1)) : undefined);
    const postbackStep = steps.findIndex((b) => b.code.includes('npm run postback'));
    expect(postbackStep).toBeGreaterThan(0);
    const answer = JSON.parse(/^HTTP 200\n([\s\S]*)$/m.exec(outputOf(postbackStep).slice(outputOf(postbackStep).indexOf('HTTP 200')))?.[1] ?? 'null') as {
      conversionId: string;
      decision: string;
      reasons: string[];
      duplicate: boolean;
    };
    expect(answer).toMatchObject({ duplicate: false });
    // The README explains one reason only, the seconds between click and postback: nothing else may fire.
    expect(answer.reasons.filter((r) => r !== 'ctit_too_short')).toEqual([]);
    expect(answer.decision).toBe(answer.reasons.length === 0 ? 'accepted' : 'flagged');

    const readBack = JSON.parse(outputOf(steps.length - 1)) as { items: Array<Record<string, unknown>> };
    expect(readBack.items).toHaveLength(1);
    const item = readBack.items[0] as Record<string, unknown>;
    expect(item).toMatchObject({ id: answer.conversionId, decision: answer.decision, payout: '2.50', currency: 'USD', status: 'approved', source: 's2s' });
    expect(item.txid).toMatch(/^order-\d+$/);

    const database = await openCliDatabase(undefined, engine.dataDir, () => undefined);
    const sql = connect(database.url, { max: 1 });
    try {
      const rows = await sql`
        select c.txid, c.click_id, c.payout_minor, c.currency, c.sub1, a.name as advertiser, p.name as publisher
        from conversions c join advertisers a on a.id = c.advertiser_id join publishers p on p.id = c.publisher_id
        where c.id = ${answer.conversionId}`;
      expect(rows).toEqual([
        { txid: item.txid, click_id: item.clickid, payout_minor: 250n, currency: 'USD', sub1: 'quickstart', advertiser: 'Acme Shop', publisher: 'Blog Network' },
      ]);
      expect(await sql`select count(*)::int as n from conversions`).toEqual([{ n: 1 }]);
    } finally {
      await sql.end({ timeout: 1 });
    }
  });

  it('without ADMIN_TOKEN, npm start prints a working admin token under the line the README quotes', { timeout: 180_000 }, async () => {
    const quoted = /prints it once, under\s+`([^`]+)`/.exec(readFileSync('README.md', 'utf8'))?.[1];
    expect(quoted, 'the quickstart quotes the line npm start prints above the token').toBeDefined();
    // The token does not depend on where PostgreSQL runs: a cloned test database spares a second initdb.
    const db = await freshDatabase();
    const engine = await npmStart({ DATABASE_URL: db.url });
    started.push({ ...engine, stop: () => db.drop() });
    const output = engine.output();
    expect(output).toContain(quoted);
    const token = output.slice(output.indexOf(quoted as string) + (quoted as string).length).trim().split('\n')[0]?.trim() ?? '';
    const asAdmin = await fetch(`${engine.url}/v1/tokens`, { headers: { authorization: `Bearer ${token}` } });
    expect(asAdmin.status).toBe(200);
    const wrong = await fetch(`${engine.url}/v1/tokens`, { headers: { authorization: `Bearer ${token}x` } });
    expect(wrong.status).toBe(401);
  });
});

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, repeats numbered. */
function anchorsOf(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const anchors = new Set<string>();
  const withoutCode = markdown.replace(/^```[\s\S]*?^```$/gm, '');
  for (const [, heading] of withoutCode.matchAll(/^#{1,6} (.+)$/gm)) {
    const base = (heading as string).trim().toLowerCase().replace(/[^\p{L}\p{N} _-]/gu, '').replace(/ /g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    anchors.add(n === 0 ? base : `${base}-${n}`);
  }
  return anchors;
}

describe('the README', () => {
  it('links only to files in this repository and to headings that exist', () => {
    const root = process.cwd();
    const readme = readFileSync('README.md', 'utf8');
    const links = [...readme.replace(/^```[\s\S]*?^```$/gm, '').matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1] as string);
    expect(links.length).toBeGreaterThan(5);
    const broken: string[] = [];
    for (const link of links) {
      if (/^(https?:|mailto:)/.test(link)) continue;
      const [file = '', anchor] = link.split('#');
      const target = path.resolve(root, file || 'README.md');
      if (!target.startsWith(`${root}${path.sep}`) || !existsSync(target)) {
        broken.push(`${link}: not a file in the repository`);
        continue;
      }
      if (anchor !== undefined && statSync(target).isFile() && !anchorsOf(readFileSync(target, 'utf8')).has(anchor)) broken.push(`${link}: no such heading`);
    }
    expect(broken).toEqual([]);
  });
});
