import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { connect } from '../../src/db/database.js';
import { startEmbeddedPostgres } from '../../src/db/embedded.js';

/**
 * An embedded PostgreSQL with server settings of the bench's choosing, for figures that depend on
 * them (the reconciler at 10× needs its working set in shared_buffers, as any production server is
 * sized; the embedded default is 128 MB). Started the engine's own way, then the settings are
 * written with ALTER SYSTEM and the server restarted on the same data directory to apply them.
 */

export type TunedPostgres = { url: string; description: string; stop(): Promise<void> };

export async function startTunedPostgres(settings: Record<string, string>, log: (line: string) => void): Promise<TunedPostgres> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'pbe-bench-tuned-'));
  // When run as root the server runs as a `postgres` user, which must be able to reach its data dir.
  await chmod(dir, 0o755);
  const first = await startEmbeddedPostgres(dir, log, { persistent: true });
  const admin = connect(first.url, { max: 1 });
  try {
    for (const [name, value] of Object.entries(settings)) await admin.unsafe(`alter system set ${name} = '${value.replace(/'/g, "''")}'`);
  } finally {
    await admin.end();
  }
  await first.stop();
  const server = await startEmbeddedPostgres(dir, log, { persistent: true });
  const check = connect(server.url, { max: 1 });
  const applied: string[] = [];
  try {
    for (const name of Object.keys(settings)) {
      const [row] = await check.unsafe(`select current_setting('${name.replace(/'/g, "''")}') as v`);
      applied.push(`${name}=${row?.v}`);
    }
  } finally {
    await check.end();
  }
  return {
    url: server.url,
    description: `embedded PostgreSQL with ${applied.join(', ')} in ${dir} (deleted afterwards)`,
    async stop() {
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
