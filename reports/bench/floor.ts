import { randomBytes } from 'node:crypto';
import { runLoad, type Measurement } from './load.js';
import { PostbackLedger } from './postback-ledger.js';
import { startServer, type ServerProcess } from './processes.js';
import { phase } from './progress.js';
import { clickPath, mintClicks, type Catalog } from './seed.js';
import { webhookKey } from './signing.js';
import { warmThenMeasure, type BenchContext } from './targets.js';

/**
 * Measures `floor-server.ts` with the same requests, connections and client-side work as the
 * engine's runs: the share of the hello-world that the contract's cryptography alone leaves.
 */

/** What the floor's routes need from a catalog: any IDs, since the floor looks nothing up. */
const FLOOR_CATALOG: Catalog = { advertiserId: 'adv_floor', secret: '', publisherId: 'pub_floor', offerId: 'off_floor' };
const FLOOR_CLICKS = 2_000;

async function withFloor<T>(use: (floor: ServerProcess, secret: string) => Promise<T>): Promise<T> {
  const secret = `whsec_${randomBytes(32).toString('base64')}`;
  phase('floor: starting the bare fastify server with only the click-ID and signature checks (reports/bench/floor-server.ts)');
  const floor = await startServer({
    name: 'floor',
    nodeArgs: ['--import', 'tsx', 'reports/bench/floor-server.ts'],
    env: { FLOOR_WEBHOOK_SECRET: secret },
    readyPath: '/healthz',
  });
  try {
    return await use(floor, secret);
  } finally {
    await floor.stop();
  }
}

/** `GET /c/:offerId` minting a click ID and recording nothing. */
export async function measureClickFloor(ctx: BenchContext): Promise<Measurement> {
  return withFloor(async (floor) => {
    const requests = [{ method: 'GET' as const, path: clickPath(FLOOR_CATALOG, 'bench') }];
    return warmThenMeasure(ctx, floor, 'floor, click redirect', floor.baseUrl, 302, requests);
  });
}

/**
 * Signed GET postbacks replayed byte for byte, through the same ledger as the engine's replays (so
 * the client parses each answer the same way). The warm-up sends the distinct txids the replays use.
 */
export async function measureDuplicateFloor(ctx: BenchContext): Promise<Measurement> {
  const { connections, warmupS } = ctx.options;
  return withFloor(async (floor, secret) => {
    const url = floor.baseUrl;
    const clicks = await mintClicks(url, FLOOR_CATALOG, FLOOR_CLICKS, connections);
    const ledger = new PostbackLedger(FLOOR_CATALOG.advertiserId, webhookKey(secret), clicks);
    await runLoad({
      label: 'floor: first sends of the txids to replay',
      url,
      connections,
      durationS: warmupS,
      amount: FLOOR_CLICKS,
      requests: ledger.distinctRequests(),
      expectedStatus: 200,
    });
    return warmThenMeasure(ctx, floor, 'floor, duplicates', url, 200, ledger.replayRequests());
  });
}
