import { randomBytes } from 'node:crypto';
import { CpuProbe } from './cpu-usage.js';
import { runLoad, type Measurement } from './load.js';
import { PostbackLedger } from './postback-ledger.js';
import { startServer, type ServerProcess } from './processes.js';
import { phase } from './progress.js';
import { clickPath, mintClicks, type Catalog } from './seed.js';
import { webhookKey } from './signing.js';
import { waitForQuiet, type BenchContext } from './targets.js';

/**
 * Measures `floor-server.ts` with the same requests, connections and client-side work as the
 * engine's runs: the share of the hello-world that the contract's cryptography alone leaves.
 */

/** What the floor's routes need from a catalog: any IDs, since the floor looks nothing up. */
const FLOOR_CATALOG: Catalog = { advertiserId: 'adv_floor', secret: '', publisherId: 'pub_floor', offerId: 'off_floor' };
const FLOOR_CLICKS = 2_000;

async function withFloor<T>(ctx: BenchContext, use: (floor: ServerProcess, secret: string) => Promise<T>): Promise<T> {
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
  const { connections, durationS, warmupS } = ctx.options;
  return withFloor(ctx, async (floor) => {
    const requests = [{ method: 'GET' as const, path: clickPath(FLOOR_CATALOG, 'bench') }];
    const url = floor.baseUrl;
    if (warmupS > 0) await runLoad({ label: 'warm-up floor, click redirect', url, connections, durationS: warmupS, requests, expectedStatus: 302 });
    const cpu = new CpuProbe(floor.pid, undefined);
    await waitForQuiet(ctx.options.quietWaitS, cpu);
    return runLoad({ label: 'measure floor, click redirect', url, connections, durationS, requests, expectedStatus: 302, cpu });
  });
}

/**
 * Signed GET postbacks replayed byte for byte, through the same ledger as the engine's replays (so
 * the client parses each answer the same way). The warm-up sends the distinct txids the replays use.
 */
export async function measureDuplicateFloor(ctx: BenchContext): Promise<Measurement> {
  const { connections, durationS, warmupS } = ctx.options;
  return withFloor(ctx, async (floor, secret) => {
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
    const requests = ledger.replayRequests();
    if (warmupS > 0) await runLoad({ label: 'warm-up floor, duplicates', url, connections, durationS: warmupS, requests, expectedStatus: 200 });
    const cpu = new CpuProbe(floor.pid, undefined);
    await waitForQuiet(ctx.options.quietWaitS, cpu);
    return runLoad({ label: 'measure floor, duplicates', url, connections, durationS, requests, expectedStatus: 200, cpu });
  });
}
