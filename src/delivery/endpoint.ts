import { auditEntityChange, snapshot } from '../audit/admin-snapshots.js';
import type { Actor } from '../audit/audit-log.js';
import { bumpCatalogVersion } from '../catalog/catalog.js';
import type { Sql } from '../db/database.js';
import { writeOutcomes, type AttemptRecord } from './outcome-writer.js';
import { parkPublisherDeliveries, resumePublisherDeliveries } from './rescheduling.js';

/**
 * A publisher endpoint's enabled state. A 410 Gone disables it (CONTRACT §6) until an admin re-enables
 * it; both changes bump the catalog version so every node's catalog and admin view agree within a
 * second, while the worker's claim reads `publishers.disabled_at` directly and stops at once.
 * Both take the engine's transaction pool (`txSql`, see TX_POOL_MAX in db/database.ts).
 */

/**
 * Records the 410 attempt and disables the endpoint, in one transaction. The publisher's other waiting
 * deliveries are parked at their deadline so claims skip past them cheaply; the sweep expires them
 * there unless re-enabling brings them back first. Returns whether this call is the one that disabled it.
 */
export async function disableOnGone(
  txSql: Sql,
  publisherId: string,
  reason: string,
  workerId: string,
  attempt: AttemptRecord,
  delayMs: number,
): Promise<boolean> {
  return txSql.begin(async (tx) => {
    const flipped = await tx`update publishers set disabled_at = now(), disabled_reason = ${reason}, updated_at = now()
      where id = ${publisherId} and disabled_at is null returning id`;
    if (flipped.length > 0) await bumpCatalogVersion(tx);
    await writeOutcomes(tx, workerId, [{ attempt, delivered: false, retryInMs: delayMs }]);
    await parkPublisherDeliveries(tx, publisherId);
    return flipped.length > 0;
  });
}

export type EnableResult = { found: false } | { found: true; wasDisabled: boolean; resumed: number };

/** Re-enables a disabled endpoint and makes its deliveries still inside their window due now; audited when it changes something. */
export async function enablePublisher(txSql: Sql, publisherId: string, actor: Actor): Promise<EnableResult> {
  return txSql.begin(async (tx) => {
    const [before] = await tx<{ disabled: boolean }[]>`
      select disabled_at is not null as disabled from publishers where id = ${publisherId} for update`;
    if (!before) return { found: false } as const;
    // Enabling an enabled endpoint changes nothing: it must not pull scheduled retries forward.
    if (!before.disabled) return { found: true, wasDisabled: false, resumed: 0 } as const;
    const shownBefore = await snapshot(tx, 'publisher', publisherId);
    await tx`update publishers set disabled_at = null, disabled_reason = null, updated_at = now() where id = ${publisherId}`;
    await bumpCatalogVersion(tx);
    await auditEntityChange(tx, actor, 'enable', 'publisher', publisherId, shownBefore);
    const resumed = await resumePublisherDeliveries(tx, publisherId);
    return { found: true, wasDisabled: true, resumed } as const;
  });
}
