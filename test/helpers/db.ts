import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import { connect, type Sql } from '../../src/db/database.js';

/** A fresh database cloned from the migrated template: isolated per test file, created in milliseconds. */
export async function freshDatabase(): Promise<{ url: string; sql: Sql; drop: () => Promise<void> }> {
  const serverUrl = inject('databaseUrl');
  const name = `t_${randomBytes(6).toString('hex')}`;
  const admin = connect(serverUrl, { max: 1 });
  await admin.unsafe(`create database ${name} with template ${inject('templateDatabase')}`);
  await admin.end();
  const url = serverUrl.replace(/\/postgres$/, `/${name}`);
  const sql = connect(url, { max: 10 });
  return {
    url,
    sql,
    drop: async () => {
      await sql.end({ timeout: 1 });
      const a = connect(serverUrl, { max: 1 });
      await a.unsafe(`drop database if exists ${name} with (force)`);
      await a.end();
    },
  };
}

/** An empty database with no migrations applied, for migration tests. */
export async function emptyDatabase(): Promise<{ url: string; sql: Sql; drop: () => Promise<void> }> {
  const serverUrl = inject('databaseUrl');
  const name = `e_${randomBytes(6).toString('hex')}`;
  const admin = connect(serverUrl, { max: 1 });
  await admin.unsafe(`create database ${name}`);
  await admin.end();
  const url = serverUrl.replace(/\/postgres$/, `/${name}`);
  const sql = connect(url, { max: 10 });
  return {
    url,
    sql,
    drop: async () => {
      await sql.end({ timeout: 1 });
      const a = connect(serverUrl, { max: 1 });
      await a.unsafe(`drop database if exists ${name} with (force)`);
      await a.end();
    },
  };
}
