import { REDACTED, recordAudit, type Actor } from '../audit/audit-log.js';
import type { Sql, TxSql } from '../db/database.js';
import { newId } from '../ids.js';
import { hashToken, newBearerToken, type Role } from './tokens.js';

/** Creating and revoking API tokens, each with its audit row in the same transaction. */

type TokenRow = { id: string; name: string; role: Role; created_at: Date; revoked_at: Date | null };

/** A token as the audit shows it: the bearer text and its hash never, only that one exists. */
function tokenAuditView(r: TokenRow) {
  return {
    id: r.id,
    name: r.name,
    role: r.role,
    token: REDACTED,
    createdAt: r.created_at.toISOString(),
    revokedAt: r.revoked_at?.toISOString() ?? null,
  };
}

export async function createToken(txSql: Sql, actor: Actor, input: { role: Role; name: string }) {
  const id = newId('tok');
  const token = newBearerToken();
  const row = await txSql.begin(async (tx: TxSql) => {
    const [inserted] = await tx<TokenRow[]>`insert into api_tokens (id, name, role, token_hash)
      values (${id}, ${input.name}, ${input.role}, ${hashToken(token)}) returning id, name, role, created_at, revoked_at`;
    const created = inserted as TokenRow;
    await recordAudit(tx, { actor, action: 'create', entity: 'token', entityId: id, before: null, after: tokenAuditView(created) });
    return created;
  });
  return { id, token, role: row.role, name: row.name, createdAt: row.created_at.toISOString() };
}

/** False when there is no such active token: nothing changed, nothing is audited. */
export async function revokeToken(txSql: Sql, actor: Actor, id: string): Promise<boolean> {
  return txSql.begin(async (tx: TxSql) => {
    const [before] = await tx<TokenRow[]>`
      select id, name, role, created_at, revoked_at from api_tokens where id = ${id} and revoked_at is null for update`;
    if (!before) return false;
    const [after] = await tx<TokenRow[]>`update api_tokens set revoked_at = now() where id = ${id}
      returning id, name, role, created_at, revoked_at`;
    await recordAudit(tx, { actor, action: 'revoke', entity: 'token', entityId: id, before: tokenAuditView(before), after: tokenAuditView(after as TokenRow) });
    return true;
  });
}
