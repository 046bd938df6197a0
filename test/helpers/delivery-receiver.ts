import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Webhook } from 'standardwebhooks';
import type { Config } from '../../src/config.js';
import type { Sql } from '../../src/db/database.js';
import { enqueueDeliveries } from '../../src/delivery/outbox.js';
import { seedCatalog, startTestEngine, type TestEngine } from './engine.js';

/**
 * A real local HTTP receiver for outbound postbacks. It verifies every request's signature with the
 * official `standardwebhooks` package, records what arrived and when, and answers as the test says:
 * a status (with headers and body) or 'hang' (never answers).
 */

export type Received = {
  at: number;
  method: string;
  url: string;
  headers: Record<string, string>;
  body: string;
  webhookId: string;
  /** undefined when the signature verified; otherwise the library's complaint. */
  signatureError: string | undefined;
};

export type Reply = { status: number; headers?: Record<string, string>; body?: string; delayMs?: number } | 'hang';
export type Handler = (req: Received, nth: number) => Reply;

export type Receiver = {
  url: string;
  received: Received[];
  /** TCP connections accepted, ever. */
  connections: () => number;
  /** Requests that arrived and were not answered (hanging). */
  hanging: () => number;
  secret: string | undefined;
  handler: Handler;
  waitFor: (predicate: (r: Received[]) => boolean, timeoutMs?: number) => Promise<void>;
  close: () => Promise<void>;
};

export async function startReceiver(handler: Handler = () => ({ status: 200, body: 'ok' })): Promise<Receiver> {
  let connections = 0;
  let hanging = 0;
  const sockets = new Set<Socket>();
  const received: Received[] = [];
  const state: Receiver = {
    url: '',
    received,
    connections: () => connections,
    hanging: () => hanging,
    secret: undefined,
    handler,
    waitFor: async (predicate, timeoutMs = 20_000) => {
      const deadline = Date.now() + timeoutMs;
      while (!predicate(received)) {
        if (Date.now() > deadline) throw new Error(`receiver: condition not met within ${timeoutMs} ms (${received.length} received)`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : (v ?? '')]));
      let signatureError: string | undefined = 'no secret configured in the receiver';
      if (state.secret) {
        try {
          new Webhook(state.secret).verify(body, headers);
          signatureError = undefined;
        } catch (err) {
          signatureError = (err as Error).message;
        }
      }
      const entry: Received = {
        at: Date.now(),
        method: req.method ?? '',
        url: req.url ?? '',
        headers,
        body,
        webhookId: headers['webhook-id'] ?? '',
        signatureError,
      };
      received.push(entry);
      const reply = state.handler(entry, received.length);
      if (reply === 'hang') {
        hanging++;
        res.on('close', () => hanging--);
        return;
      }
      const answer = () => {
        res.writeHead(reply.status, reply.headers ?? {});
        res.end(reply.body ?? '');
      };
      if (reply.delayMs) setTimeout(answer, reply.delayMs);
      else answer();
    });
  });
  server.on('connection', (socket: Socket) => {
    connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return state;
}

let txCounter = 0;

/** Conversions straight into the table (the intake is not under test here), with their deliveries queued. */
export async function insertConversionsWithDeliveries(
  sql: Sql,
  ids: { advertiserId: string; offerId: string; publisherId: string },
  count: number,
  opts: { refireWindowS: number; subs?: (string | null)[]; status?: string; payoutMinor?: bigint; currency?: string },
): Promise<{ conversionIds: string[]; deliveryIds: string[] }> {
  const rows = Array.from({ length: count }, () => {
    txCounter++;
    const n = `${Date.now().toString(36)}_${txCounter}`;
    return { id: `cv_${n}`, click: `clk_${n}`, txid: `tx_${n}` };
  });
  const subs = opts.subs ?? [];
  const created = await sql<{ id: string; created_at: Date }[]>`
    insert into conversions (id, advertiser_id, offer_id, publisher_id, click_id, click_created_at, txid, event, status,
                             sub1, sub2, sub3, sub4, sub5, payout_minor, revenue_minor, currency, decision, score, source)
    select u.id, ${ids.advertiserId}, ${ids.offerId}, ${ids.publisherId}, u.click, now(), u.txid, 'conversion',
           ${opts.status ?? 'approved'}, ${subs[0] ?? null}, ${subs[1] ?? null}, ${subs[2] ?? null}, ${subs[3] ?? null}, ${subs[4] ?? null},
           ${opts.payoutMinor ?? 250n}, ${opts.payoutMinor ?? 250n}, ${opts.currency ?? 'USD'}, 'accepted', 0, 's2s'
    from unnest(${rows.map((r) => r.id)}::text[], ${rows.map((r) => r.click)}::text[],
                ${rows.map((r) => r.txid)}::text[]) as u(id, click, txid)
    returning id, created_at`;
  await sql`insert into conversion_txids (advertiser_id, txid, conversion_id, created_at)
    select advertiser_id, txid, id, created_at from conversions where id = any(${created.map((c) => c.id)}::text[])`;
  const deliveryIds = await enqueueDeliveries(
    sql,
    created.map((c) => ({ conversionId: c.id, publisherId: ids.publisherId, conversionCreatedAt: c.created_at })),
    opts.refireWindowS,
  );
  return { conversionIds: created.map((c) => c.id), deliveryIds };
}

/** Windows and backoffs shrunk so a whole retry story takes about a second. */
export const FAST_DELIVERY: Partial<Config> = {
  allowPrivateDestinations: true,
  deliveryPollS: 0.05,
  deliveryTimeoutS: 2,
  deliveryLeaseS: 5,
  deliveryBackoffS: [0.2, 0.4, 0.8],
  refireWindowS: 60,
};

export type DeliverySetup = {
  t: TestEngine;
  rx: Receiver;
  ids: { advertiserId: string; offerId: string; publisherId: string };
  close: () => Promise<void>;
};

/** An engine, a receiver, and a publisher whose postback URL points at the receiver. */
export async function setupDelivery(
  handler: Handler,
  opts: { config?: Partial<Config>; method?: 'GET' | 'POST'; path?: string } = {},
): Promise<DeliverySetup> {
  const rx = await startReceiver(handler);
  const t = await startTestEngine({ ...FAST_DELIVERY, ...opts.config });
  const seeded = await seedCatalog(t.app, {
    publisher: { postbackUrl: `${rx.url}${opts.path ?? '/pb?c={clickid}&p={payout}'}`, method: opts.method ?? 'POST' },
  });
  rx.secret = seeded.publisher.secret;
  return {
    t,
    rx,
    ids: { advertiserId: seeded.advertiser.id, offerId: seeded.offer.id, publisherId: seeded.publisher.id },
    close: async () => {
      await t.close();
      await rx.close();
    },
  };
}

export async function waitForState(sql: Sql, id: string, state: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const [row] = await sql`select state from deliveries where id = ${id}`;
    if (row?.state === state) return;
    if (Date.now() > deadline) throw new Error(`delivery ${id} is ${row?.state}, not ${state}, after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
