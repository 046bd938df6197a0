import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Sql } from '../db/database.js';

/**
 * Bearer tokens for /v1. Stored as SHA-256 hashes; a token is looked up by its hash on every request
 * so a revocation is effective at once on every node. ADMIN_TOKEN from the environment is never stored.
 */

export type Role = 'admin' | 'analyst' | 'finance';

export type Principal = { tokenId: string; name: string; role: Role };

export const BOOTSTRAP_TOKEN_ID = 'tok_bootstrap';

export function newBearerToken(): string {
  return `pbe_${randomBytes(32).toString('base64url')}`;
}

export function hashToken(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

export function hasRole(principal: Principal, needed: readonly Role[]): boolean {
  return principal.role === 'admin' || needed.includes(principal.role);
}

export class TokenVerifier {
  private readonly envAdminHash: Buffer | undefined;

  constructor(private readonly sql: Sql, envAdminToken: string | undefined) {
    this.envAdminHash = envAdminToken ? hashToken(envAdminToken) : undefined;
  }

  async verify(token: string): Promise<Principal | undefined> {
    const hash = hashToken(token);
    // Comparing fixed-length digests in constant time: the token's length and content never leak.
    if (this.envAdminHash && timingSafeEqual(hash, this.envAdminHash)) {
      return { tokenId: 'env', name: 'ADMIN_TOKEN', role: 'admin' };
    }
    const [row] = await this.sql<{ id: string; name: string; role: Role }[]>`
      select id, name, role from api_tokens where token_hash = ${hash} and revoked_at is null`;
    return row ? { tokenId: row.id, name: row.name, role: row.role } : undefined;
  }
}

/**
 * With no ADMIN_TOKEN, the first start of a database generates one, stores its hash and prints it
 * once. Two nodes starting together race on the fixed id; only the winner prints.
 */
export async function ensureBootstrapToken(sql: Sql, envAdminToken: string | undefined): Promise<string | undefined> {
  if (envAdminToken) return undefined;
  const token = newBearerToken();
  const inserted = await sql`
    insert into api_tokens (id, name, role, token_hash)
    values (${BOOTSTRAP_TOKEN_ID}, 'generated admin token', 'admin', ${hashToken(token)})
    on conflict (id) do nothing returning id`;
  return inserted.length > 0 ? token : undefined;
}
