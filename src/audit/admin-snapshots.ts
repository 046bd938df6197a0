import { advertiserView, offerView, publisherView } from '../admin/views.js';
import { Catalog } from '../catalog/catalog.js';
import type { Sql, TxSql } from '../db/database.js';
import { recordAudit, REDACTED, type Actor, type AuditAction } from './audit-log.js';

/**
 * The before and after of an admin change, as the API shows the entity, read inside the change's own
 * transaction (so `after` is what commits, and `before` is what the change replaced, not what this
 * node's catalog last polled). The rows are mapped by the catalog's own loader so that a field added
 * to an entity shows up here without a second mapping to keep in step. That loader reads the whole
 * catalog; admin writes already reload it on every node after each change, so this adds the same
 * cost again on the writing node, for changes that come at human rates.
 */

async function catalogIn(tx: TxSql): Promise<Catalog> {
  // Catalog only issues tagged queries; inside the transaction it sees the change it is part of.
  const catalog = new Catalog(tx as unknown as Sql);
  await catalog.load();
  return catalog;
}

export type AdminEntityKind = 'advertiser' | 'publisher' | 'offer';

/**
 * Locks the entity's row and reads the catalog as this transaction sees it. A PATCH merges its fields
 * into that, not into this node's polled catalog: another node's change of a moment ago (not yet
 * polled here) or a concurrent PATCH of other fields would otherwise be written back over.
 * Null when the entity does not exist.
 */
export async function lockForChange(tx: TxSql, kind: AdminEntityKind, id: string): Promise<Catalog | null> {
  const locked = await tx`select 1 from ${tx(TABLES[kind])} where id = ${id} for update`;
  if (locked.length === 0) return null;
  return catalogIn(tx);
}

const TABLES: Record<AdminEntityKind, string> = { advertiser: 'advertisers', publisher: 'publishers', offer: 'offers' };

export async function snapshot(tx: TxSql, kind: AdminEntityKind, id: string): Promise<object | null> {
  return viewIn(await catalogIn(tx), kind, id);
}

/** The entity as the API shows it, from a catalog read inside the transaction. */
export function viewIn(catalog: Catalog, kind: AdminEntityKind, id: string): object | null {
  switch (kind) {
    case 'advertiser': {
      const advertiser = catalog.advertisers.get(id);
      return advertiser ? advertiserView(advertiser) : null;
    }
    case 'publisher': {
      const publisher = catalog.publishers.get(id);
      return publisher ? publisherView(publisher) : null;
    }
    case 'offer': {
      const offer = catalog.offers.get(id);
      return offer ? offerView(offer) : null;
    }
  }
}

/** An advertiser secret as the audit shows it: which one, whose, when; never its bytes. */
export async function secretSnapshot(tx: TxSql, secretId: string): Promise<object | null> {
  const [row] = await tx<{ id: string; advertiser_id: string; created_at: Date; revoked_at: Date | null }[]>`
    select id, advertiser_id, created_at, revoked_at from advertiser_secrets where id = ${secretId}`;
  if (!row) return null;
  return {
    id: row.id,
    advertiserId: row.advertiser_id,
    secret: REDACTED,
    createdAt: row.created_at.toISOString(),
    revokedAt: row.revoked_at?.toISOString() ?? null,
  };
}

/**
 * Records an advertiser, publisher or offer change with its `after` read now, inside the transaction.
 * `secretShown`: the call's answer showed a new secret once (advertiser and publisher creation); the
 * audit records that it did, as "[redacted]", where the answer had it.
 */
export async function auditEntityChange(
  tx: TxSql,
  actor: Actor,
  action: AuditAction,
  kind: AdminEntityKind,
  id: string,
  before: object | null,
  opts: { secretShown?: boolean } = {},
): Promise<void> {
  let after = await snapshot(tx, kind, id);
  if (after && opts.secretShown) {
    after =
      kind === 'advertiser'
        ? { ...after, secrets: (after as { secrets: object[] }).secrets.map((s) => ({ ...s, secret: REDACTED })) }
        : { ...after, secret: REDACTED };
  }
  await recordAudit(tx, { actor, action, entity: kind, entityId: id, before, after });
}
