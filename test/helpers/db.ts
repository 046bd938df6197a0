import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import { connect, type Sql } from '../../src/db/database.js';

export type TestDatabase = { url: string; sql: Sql; drop: () => Promise<void> };

/** A fresh database cloned from the migrated template: isolated per test file, created in milliseconds. */
export function freshDatabase(): Promise<TestDatabase> {
  return createDatabase('t', inject('templateDatabase'));
}

/** An empty database with no migrations applied, for migration tests. */
export function emptyDatabase(): Promise<TestDatabase> {
  return createDatabase('e', undefined);
}

async function createDatabase(prefix: string, template: string | undefined): Promise<TestDatabase> {
  const serverUrl = inject('databaseUrl');
  const name = `${prefix}_${randomBytes(6).toString('hex')}`;
  const admin = connect(serverUrl, { max: 1 });
  await admin.unsafe(template ? `create database ${name} with template ${template}` : `create database ${name}`);
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
