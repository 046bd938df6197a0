import { chmod, mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closedToOthers } from '../src/db/embedded.js';

/**
 * As root the embedded PostgreSQL runs as a `postgres` user, which must enter every directory above
 * its binaries and data: the engine names the first one it cannot, instead of crashing in initdb.
 */

let base: string;

beforeAll(async () => {
  base = await mkdtemp(path.join(os.tmpdir(), 'pbe-access-'));
  await chmod(base, 0o755);
  await mkdir(path.join(base, 'open', 'checkout'), { recursive: true });
  await mkdir(path.join(base, 'private', 'checkout'), { recursive: true });
  await chmod(path.join(base, 'private'), 0o700);
});

afterAll(async () => {
  await rm(base, { recursive: true, force: true });
});

describe('directories the postgres user must enter', () => {
  it('names the first directory above a path that others cannot enter', () => {
    expect(closedToOthers([path.join(base, 'open', 'checkout', '.data')])).toBeUndefined();
    expect(closedToOthers([path.join(base, 'private', 'checkout', '.data')])).toBe(path.join(base, 'private'));
    // Any of the paths: the binaries may live elsewhere than the data.
    expect(closedToOthers([path.join(base, 'open', 'checkout', '.data'), path.join(base, 'private', 'checkout', 'node_modules', 'x')])).toBe(path.join(base, 'private'));
  });

  it('passes over directories that do not exist yet (they are made 0755)', () => {
    expect(closedToOthers([path.join(base, 'open', 'not', 'yet', 'made', '.data')])).toBeUndefined();
  });
});
