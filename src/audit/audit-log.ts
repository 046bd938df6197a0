import type { Principal } from '../auth/tokens.js';
import type { TxSql } from '../db/database.js';

/**
 * The audit of admin changes (CONTRACT §10). `recordAudit` is called by every admin write function
 * inside the write's own transaction: a write that rolls back leaves no row, a committed one always
 * has exactly one. The table refuses UPDATE and DELETE (sql/000060_admin_audit.sql).
 */

export type AuditEntity = 'advertiser' | 'advertiser_secret' | 'publisher' | 'offer' | 'token' | 'fx_rates';
export const AUDIT_ENTITIES: readonly AuditEntity[] = ['advertiser', 'advertiser_secret', 'publisher', 'offer', 'token', 'fx_rates'];

export type AuditAction = 'create' | 'update' | 'revoke' | 'enable';

export type Actor = Pick<Principal, 'tokenId' | 'name'>;

export type AuditEntry = {
  actor: Actor;
  action: AuditAction;
  entity: AuditEntity;
  entityId: string;
  /** The entity as the API shows it before the change; null when the change created it. */
  before: unknown;
  after: unknown;
};

export const REDACTED = '[redacted]';

/**
 * Field names that hold a secret anywhere in an entity: what the API shows once at creation (`secret`,
 * `token`) and what is stored behind them. Redacted here as well as by the callers' views, so a view
 * that one day grows such a field still cannot carry it into an append-only table nobody can clean.
 */
const SECRET_FIELDS = new Set(['secret', 'key', 'token', 'tokenHash', 'token_hash']);

export function redactSecrets(value: unknown): unknown {
  if (Buffer.isBuffer(value) || value instanceof Uint8Array) return REDACTED;
  if (Array.isArray(value)) return value.map(redactSecrets);
  if (value instanceof Date) return value.toISOString();
  if (typeof value === 'bigint') return value.toString();
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, SECRET_FIELDS.has(k) && v !== null && v !== undefined ? REDACTED : redactSecrets(v)]),
    );
  }
  return value;
}

export async function recordAudit(tx: TxSql, entry: AuditEntry): Promise<void> {
  const before = entry.before === undefined || entry.before === null ? null : redactSecrets(entry.before);
  const after = entry.after === undefined || entry.after === null ? null : redactSecrets(entry.after);
  // clock_timestamp, not the transaction's start: a change that waited for another's row lock happened
  // after it, and the trail, newest first by `at`, must list them in the order they took effect.
  await tx`insert into admin_audit (at, actor_token_id, actor_name, action, entity, entity_id, before, after)
    values (clock_timestamp(), ${entry.actor.tokenId}, ${entry.actor.name}, ${entry.action}, ${entry.entity}, ${entry.entityId},
            ${before === null ? null : tx.json(before as never)}, ${after === null ? null : tx.json(after as never)})`;
}

/** The principal the guard put on the request; admin routes always run behind the guard. */
export function actorOf(principal: Principal | undefined): Actor {
  if (!principal) throw new Error('an admin write ran without an authenticated principal');
  return { tokenId: principal.tokenId, name: principal.name };
}
