import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

/**
 * The process entry survives a PostgreSQL connection error that no one awaited, and still dies of
 * any other unhandled rejection (src/ops/stray-rejections.ts). Run in a child process: the handler is
 * process-wide.
 */

function runWith(rejection: string) {
  const script = `
    import { absorbStrayDatabaseRejections } from './src/ops/stray-rejections.ts';
    import { createLogger } from './src/logger.ts';
    absorbStrayDatabaseRejections(createLogger('silent'));
    Promise.reject(${rejection});
    setTimeout(() => { process.stdout.write('still running'); }, 50);
  `;
  return spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
}

describe('unowned rejections at the process entry', () => {
  it('a PostgreSQL connection error is survived', () => {
    const run = runWith(`Object.assign(new Error('connection cut'), { code: 'ECONNRESET' })`);
    expect(run.stdout).toBe('still running');
    expect(run.status).toBe(0);
  });

  it('any other rejection still ends the process', () => {
    const run = runWith(`new Error('a bug')`);
    expect(run.stdout).toBe('');
    expect(run.status).not.toBe(0);
    expect(run.stderr).toContain('a bug');
  });
});
