import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chown, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { connect, type Sql } from '../../src/db/database.js';
import { freePort } from '../../src/net/free-port.js';

/**
 * A real Citus cluster on localhost for one test file: a coordinator and two workers, each its own
 * PostgreSQL server (initdb, `shared_preload_libraries = 'citus'`, pg_ctl on a free port), the workers
 * registered with the coordinator. The engine talks only to the coordinator.
 *
 * Where Citus comes from: CITUS_PG_BIN names the bin directory (initdb, pg_ctl, postgres) of a
 * PostgreSQL that has citus.so; without it, /usr/lib/postgresql/15/bin when citus.so is beside it
 * (Debian/Ubuntu with `postgresql-15-citus-12.1` from Citus's packagecloud repository).
 */

export const DEFAULT_CITUS_PG_BIN = '/usr/lib/postgresql/15/bin';

export const CITUS_INSTALL_HINT =
  'Citus not found: the Citus tests need a PostgreSQL with the citus extension. Install it with ' +
  '`curl https://install.citusdata.com/community/deb.sh | sudo bash && sudo apt-get install -y postgresql-15-citus-12.1` ' +
  '(or set CITUS_PG_BIN to the bin directory of a PostgreSQL that has citus.so).';

/** The bin directory of a PostgreSQL with Citus, or undefined when this machine has none. */
export function findCitusBin(): string | undefined {
  const bin = process.env.CITUS_PG_BIN || DEFAULT_CITUS_PG_BIN;
  if (!existsSync(path.join(bin, 'initdb')) || !existsSync(path.join(bin, 'pg_ctl'))) return undefined;
  const libDirs = [path.join(bin, '..', 'lib'), path.join(bin, '..', 'lib', 'postgresql')];
  const pgConfig = path.join(bin, 'pg_config');
  if (existsSync(pgConfig)) {
    const out = spawnSync(pgConfig, ['--pkglibdir'], { encoding: 'utf8' });
    if (out.status === 0) libDirs.unshift(out.stdout.trim());
  }
  return libDirs.some((dir) => existsSync(path.join(dir, 'citus.so'))) ? bin : undefined;
}

/** The Citus bin directory; without one, skip (with how to install it) unless CI is set, where it fails. */
export function citusBinOrSkip(): string | undefined {
  const bin = findCitusBin();
  if (bin) return bin;
  if (process.env.CI) throw new Error(`${CITUS_INSTALL_HINT} CI must not skip the Citus tests.`);
  process.stderr.write(`\n${CITUS_INSTALL_HINT} Skipping the Citus tests.\n\n`);
  return undefined;
}

export type CitusCluster = {
  /** The coordinator's `postgres` database: what DATABASE_URL points at. */
  url: string;
  coordinatorPort: number;
  workerPorts: number[];
  /** A superuser connection to the coordinator. */
  sql: Sql;
  /** A connection to one worker, for checking where shards went. */
  worker: (i: number) => Sql;
  stop: () => Promise<void>;
};

export type CitusClusterOptions = {
  /** Shards per distributed table: Citus's default is 32; a few keep a test cluster fast to build. */
  shardCount?: number;
};

const STARTUP_TIMEOUT_MS = 60_000;

export async function startCitusCluster(bin: string, opts: CitusClusterOptions = {}): Promise<CitusCluster> {
  // PostgreSQL refuses to run as root; CI and containers are root, so the servers run as `postgres`
  // from a directory under the system temp dir (which every user can enter), owned by that user.
  const asRoot = process.getuid?.() === 0;
  const owner = asRoot ? postgresUser() : undefined;
  const root = await mkdtemp(path.join(tmpdir(), 'pbe-citus-'));
  if (owner) await chown(root, owner.uid, owner.gid);
  const run = (cmd: string, args: string[]) => {
    const full = path.join(bin, cmd);
    const [file, argv] = owner ? ['runuser', ['-u', 'postgres', '--', full, ...args]] : [full, args];
    const out = spawnSync(file, argv, { encoding: 'utf8', cwd: root, timeout: STARTUP_TIMEOUT_MS });
    if (out.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${out.status}): ${out.stderr || out.stdout}`);
  };

  const ports = [await freePort(), await freePort(), await freePort()];
  const dirs = ports.map((_, i) => path.join(root, i === 0 ? 'coordinator' : `worker${i}`));
  const started: string[] = [];
  const conns: Sql[] = [];
  const stop = async () => {
    await Promise.all(conns.map((c) => c.end({ timeout: 1 })));
    for (const dir of started) {
      try {
        run('pg_ctl', ['stop', '-D', dir, '-m', 'immediate', '-w']);
      } catch {
        // already gone; the directory is removed below either way
      }
    }
    await rm(root, { recursive: true, force: true });
  };
  try {
    await Promise.all(
      dirs.map(async (dir, i) => {
        run('initdb', ['-D', dir, '--auth=trust', '--username=postgres', '--encoding=UTF8', '--locale=C']);
        const conf = [
          `shared_preload_libraries = 'citus'`,
          `listen_addresses = 'localhost'`,
          `port = ${ports[i]}`,
          `unix_socket_directories = '${root}'`,
          `max_connections = 300`,
          `timezone = 'UTC'`,
          `fsync = off`,
          `synchronous_commit = off`,
          `full_page_writes = off`,
          ...(opts.shardCount ? [`citus.shard_count = ${opts.shardCount}`] : []),
          // One shard per worker per query is plenty on a test cluster, and keeps connections few.
          `citus.max_adaptive_executor_pool_size = 4`,
        ];
        await writeFile(path.join(dir, 'postgresql.auto.conf'), `${conf.join('\n')}\n`);
        if (owner) await chown(path.join(dir, 'postgresql.auto.conf'), owner.uid, owner.gid);
      }),
    );
    for (const dir of dirs) {
      run('pg_ctl', ['start', '-D', dir, '-w', '-t', '60', '-l', path.join(dir, 'server.log')]);
      started.push(dir);
    }
    const urls = ports.map((p) => `postgres://postgres@127.0.0.1:${p}/postgres`);
    const servers = urls.map((u) => connect(u, { max: 2 }));
    conns.push(...servers);
    for (const s of servers) await s`create extension if not exists citus`;
    const [coordinator, ...workers] = servers as [Sql, ...Sql[]];
    await coordinator`select citus_set_coordinator_host('localhost', ${ports[0]!})`;
    for (const p of ports.slice(1)) await coordinator`select citus_add_node('localhost', ${p})`;
    return {
      url: urls[0]!,
      coordinatorPort: ports[0]!,
      workerPorts: ports.slice(1),
      sql: coordinator,
      worker: (i) => workers[i]!,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

function postgresUser(): { uid: number; gid: number } {
  try {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    return { uid, gid };
  } catch {
    throw new Error('running as root, the Citus test servers run as the "postgres" user, which does not exist (`useradd --system postgres`)');
  }
}
