import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * The publishers' side: one local endpoint every simulated publisher's postback URL points at
 * (`/pb?cv={conversion_id}`). It answers 200 and counts outbound postbacks per conversion, so the
 * report can check that exactly the accepted conversions were announced, each once.
 */
export type Receiver = { url: string; deliveries: Map<string, number>; close: () => Promise<void> };

export async function startReceiver(): Promise<Receiver> {
  const deliveries = new Map<string, number>();
  const server: Server = createServer((req, res) => {
    const cv = new URL(req.url ?? '/', 'http://receiver').searchParams.get('cv');
    if (cv) deliveries.set(cv, (deliveries.get(cv) ?? 0) + 1);
    req.resume();
    res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    deliveries,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
