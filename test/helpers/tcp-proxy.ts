import net from 'node:net';

/**
 * A TCP proxy in front of the shared PostgreSQL, so a test can cut the engine off it without stopping
 * the server other test files use.
 * - `refuse()`: every connection is destroyed and the port stops listening (PostgreSQL stopped).
 * - `blackhole()`: connections stay open but nothing is forwarded either way, old or new (a network
 *   partition, a host that died): the client learns nothing.
 * - `loseReplies()`: what the client sends is forwarded, PostgreSQL's answers are dropped: a statement
 *   commits and the client never hears of it (the outcome a deadline leaves unknown).
 * - `restore()`: new connections are forwarded again. Black-holed connections stay silent forever, as
 *   flows a dead host held would: only the client can get rid of them.
 */
export type TcpProxy = { port: number; refuse(): Promise<void>; blackhole(): void; loseReplies(spare?: (startup: Buffer) => boolean, unlessSent?: (data: Buffer) => boolean): void; restore(): Promise<void>; close(): Promise<void> };

type Flow = { client: net.Socket; upstream?: net.Socket; frozen: boolean; deaf: boolean; startup?: Buffer };

export async function startTcpProxy(targetHost: string, targetPort: number): Promise<TcpProxy> {
  let mode: 'open' | 'blackhole' | 'refuse' | 'lose_replies' = 'open';
  let spared: (startup: Buffer) => boolean = () => false;
  let deafening: (data: Buffer) => boolean = () => false;
  const flows = new Set<Flow>();
  const onConnection = (client: net.Socket) => {
    const flow: Flow = { client, frozen: mode === 'blackhole', deaf: mode === 'lose_replies' };
    flows.add(flow);
    client.on('error', () => undefined);
    client.on('close', () => {
      flows.delete(flow);
      flow.upstream?.destroy();
    });
    if (flow.frozen) {
      client.pause();
      return;
    }
    const upstream = net.connect(targetPort, targetHost);
    flow.upstream = upstream;
    upstream.on('error', () => client.destroy());
    upstream.on('close', () => client.destroy());
    client.on('data', (d) => {
      if (!flow.startup) {
        flow.startup = d;
        if (flow.deaf && spared(d)) flow.deaf = false;
      }
      if (mode === 'lose_replies' && deafening(d)) flow.deaf = true;
      if (!flow.frozen) upstream.write(d);
    });
    upstream.on('data', (d) => {
      if (!flow.frozen && !flow.deaf) client.write(d);
    });
  };
  let server = net.createServer(onConnection);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  const closeServer = () => new Promise<void>((resolve) => server.close(() => resolve()));

  return {
    port,
    async refuse() {
      mode = 'refuse';
      const closing = closeServer();
      for (const f of flows) f.client.destroy();
      await closing;
    },
    blackhole() {
      mode = 'blackhole';
      for (const f of flows) f.frozen = true;
    },
    /**
     * `spare` picks connections, by their startup message, that keep hearing PostgreSQL, until they
     * send something `unlessSent` matches (a pool shared by statements of which only some must lose
     * their answers).
     */
    loseReplies(spare = () => false, unlessSent = () => false) {
      mode = 'lose_replies';
      spared = spare;
      deafening = unlessSent;
      for (const f of flows) f.deaf = !(f.startup && spare(f.startup));
    },
    async restore() {
      if (mode === 'refuse') {
        server = net.createServer(onConnection);
        await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
      }
      mode = 'open';
      for (const f of flows) f.deaf = false;
    },
    async close() {
      for (const f of flows) f.client.destroy();
      if (server.listening) await closeServer();
    },
  };
}
