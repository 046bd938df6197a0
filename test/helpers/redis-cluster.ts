import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from '../../src/net/free-port.js';

/**
 * A real Redis Cluster of three masters (no replicas) on free loopback ports, in a temporary
 * directory: `redis-server --cluster-enabled yes` three times, joined by `redis-cli --cluster create`,
 * ready once every node reports `cluster_state:ok`. The caller checks that redis-server exists.
 */

export type LocalRedisCluster = { url: string; ports: number[]; processes: ChildProcess[]; stop: () => Promise<void> };

const START_TIMEOUT_MS = 20_000;

/**
 * `partialCoverage`: a master's loss leaves the other masters serving their slots (Redis's default,
 * full coverage, has every master refuse commands once one is marked failed).
 */
export async function startRedisCluster(opts: { partialCoverage?: boolean } = {}): Promise<LocalRedisCluster> {
  const dir = await mkdtemp(path.join(tmpdir(), 'pbe-redis-cluster-'));
  const ports: number[] = [];
  const processes: ChildProcess[] = [];
  const stop = async () => {
    for (const child of processes) child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < 3; i++) {
      // The cluster bus gets its own free port too: the default (port + 10000) may be taken.
      const [port, busPort] = [await freePort(), await freePort()];
      ports.push(port);
      processes.push(
        spawn(
          'redis-server',
          [
            '--port', String(port),
            '--cluster-port', String(busPort),
            '--bind', '127.0.0.1',
            '--cluster-enabled', 'yes',
            '--cluster-config-file', `nodes-${port}.conf`,
            '--cluster-node-timeout', '2000',
            '--dir', dir,
            '--save', '',
            '--appendonly', 'no',
            ...(opts.partialCoverage ? ['--cluster-require-full-coverage', 'no'] : []),
          ],
          { stdio: 'ignore' },
        ),
      );
    }
    const deadline = Date.now() + START_TIMEOUT_MS;
    await until(deadline, () => ports.every((p) => cli(p, 'ping') === 'PONG'), 'redis-server (cluster mode) did not start');
    const create = spawnSync('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'], {
      encoding: 'utf8',
      timeout: START_TIMEOUT_MS,
    });
    if (create.status !== 0) throw new Error(`redis-cli --cluster create failed: ${create.stdout}${create.stderr}`);
    await until(deadline, () => ports.every((p) => cli(p, 'cluster', 'info').includes('cluster_state:ok')), 'the Redis Cluster did not reach cluster_state:ok');
    return { url: ports.map((p) => `redis://127.0.0.1:${p}`).join(','), ports, processes, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

function cli(port: number, ...args: string[]): string {
  return spawnSync('redis-cli', ['-p', String(port), ...args], { encoding: 'utf8' }).stdout?.trim() ?? '';
}

async function until(deadline: number, ready: () => boolean, message: string): Promise<void> {
  while (!ready()) {
    if (Date.now() > deadline) throw new Error(`${message} within ${START_TIMEOUT_MS / 1000} s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
