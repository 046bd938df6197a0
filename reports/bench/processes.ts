import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { connect as tcpConnect } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../src/net/free-port.js';
export { freePort };

/**
 * Child processes the bench starts and owns: each measured server runs in its own process, so the
 * load generator and the server never share an event loop, and each is stopped by its own pid.
 */

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

const READY_TIMEOUT_MS = 90_000;
const STOP_TIMEOUT_MS = 20_000;
const TAIL_LINES = 40;
/** Variables a server child must not inherit from the shell that runs the bench. */
const CONTROLLED_ENV = ['DATABASE_URL', 'REDIS_URL', 'REDIS_CLUSTER', 'WORKERS', 'ADMIN_TOKEN', 'PORT', 'HOST', 'PUBLIC_URL', 'RECONCILE_CRON', 'LOG_LEVEL', 'DATA_DIR', 'TRUST_PROXY', 'NODE_OPTIONS'];

export type ServerProcess = {
  name: string;
  baseUrl: string;
  pid: number;
  /** The last lines the child wrote, for an error message. */
  tail(): string;
  stop(): Promise<number | null>;
};


/** Starts `node <nodeArgs>` with a free PORT and waits until `readyPath` answers 200. */
export async function startServer(opts: {
  name: string;
  nodeArgs: string[];
  env: Record<string, string>;
  readyPath: string;
}): Promise<ServerProcess> {
  const port = await freePort();
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const key of CONTROLLED_ENV) delete env[key];
  Object.assign(env, opts.env, { PORT: String(port), HOST: '127.0.0.1' });
  const child = spawn(process.execPath, opts.nodeArgs, { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const keep = (chunk: Buffer) => {
    lines.push(...chunk.toString('utf8').split('\n').filter((l) => l.trim().length > 0));
    if (lines.length > TAIL_LINES) lines.splice(0, lines.length - TAIL_LINES);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let hasExited = false;
  void exited.then(() => (hasExited = true));

  const baseUrl = `http://127.0.0.1:${port}`;
  const tail = () => lines.join('\n');
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (hasExited) throw new Error(`${opts.name} exited before it was ready:\n${tail()}`);
    if (Date.now() > deadline) {
      forceKill(child);
      throw new Error(`${opts.name} was not ready within ${READY_TIMEOUT_MS / 1000} s:\n${tail()}`);
    }
    try {
      const res = await fetch(baseUrl + opts.readyPath, { signal: AbortSignal.timeout(2_000) });
      await res.arrayBuffer();
      if (res.status === 200) break;
    } catch {
      // not listening yet
    }
    await sleep(200);
  }

  return {
    name: opts.name,
    baseUrl,
    pid: child.pid ?? -1,
    tail,
    async stop() {
      if (hasExited) return exited;
      child.kill('SIGTERM');
      const timer = setTimeout(() => forceKill(child), STOP_TIMEOUT_MS);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

function forceKill(child: ChildProcess): void {
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export type RedisServer = { url: string; pid: number; stop(): Promise<void> };

/** A throw-away redis-server on a free port, or undefined when none is on PATH. */
export async function startRedis(): Promise<RedisServer | undefined> {
  if (spawnSync('redis-server', ['--version']).status !== 0) return undefined;
  const port = await freePort();
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (await redisPing(port)) {
      return {
        url: `redis://127.0.0.1:${port}`,
        pid: child.pid ?? -1,
        async stop() {
          child.kill('SIGTERM');
          const timer = setTimeout(() => forceKill(child), 5_000);
          await exited;
          clearTimeout(timer);
        },
      };
    }
    await sleep(100);
  }
  forceKill(child);
  throw new Error('redis-server did not answer PING within 10 s');
}

function redisPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tcpConnect(port, '127.0.0.1');
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.on('error', () => done(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (d) => done(d.toString().startsWith('+PONG')));
  });
}
