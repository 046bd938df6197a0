import { spawn, type ChildProcess } from 'node:child_process';
import { freePort } from '../../src/net/free-port.js';

/** The real engine as a separate process (`node --import tsx src/main.ts`), for start-up and shutdown tests. */

export type EngineProcess = {
  url: string;
  child: ChildProcess;
  /** Everything the process wrote to stdout and stderr so far. */
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Polls /readyz until 200; fails early, with the output, if the process dies first. */
  ready: (timeoutMs?: number) => Promise<void>;
  /** SIGKILL if still running; for cleanup after a failed test. */
  kill: () => void;
};

export async function spawnEngine(env: Record<string, string>): Promise<EngineProcess> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    // Only what the test chooses: an ADMIN_TOKEN or REDIS_URL in the developer's shell must not leak in.
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      HOST: '127.0.0.1',
      PORT: String(port),
      RECONCILE_CRON: 'off',
      LOG_LEVEL: 'warn',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (d) => (output += d));
  child.stderr?.on('data', (d) => (output += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  let done = false;
  void exited.then(() => (done = true));
  const url = `http://127.0.0.1:${port}`;

  return {
    url,
    child,
    output: () => output,
    exited,
    kill: () => {
      if (!done) child.kill('SIGKILL');
    },
    ready: async (timeoutMs = 30_000) => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        if (done) throw new Error(`engine exited before it was ready:\n${output}`);
        try {
          const res = await fetch(`${url}/readyz`);
          if (res.status === 200) return;
        } catch {
          // not listening yet
        }
        if (Date.now() > deadline) throw new Error(`engine not ready within ${timeoutMs} ms:\n${output}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
  };
}

/**
 * `npm run reconcile -- <args>` as a process, with only the environment the test gives (plus PATH
 * and HOME), so a developer's DATABASE_URL or DATA_DIR cannot leak in.
 */
export function runReconcileCli(env: Record<string, string>, args: string[]): Promise<CommandRun> {
  return runCommand(process.execPath, ['--import', 'tsx', 'src/reconcile/cli.ts', ...args], { LOG_LEVEL: 'warn', ...env });
}

export type CommandRun = { code: number | null; stdout: string; stderr: string };

/** Runs a command to its end with only PATH, HOME and `env` in its environment, collecting its output. */
export function runCommand(command: string, args: string[], env: Record<string, string> = {}): Promise<CommandRun> {
  return new Promise((resolve) => {
    const child = spawn(command, args, {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d) => (stdout += d));
    child.stderr?.on('data', (d) => (stderr += d));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}
