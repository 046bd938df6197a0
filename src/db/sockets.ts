import net from 'node:net';

/**
 * This process's PostgreSQL sockets, by server, so that they can be cut when the server stops
 * answering.
 *
 * Why: when the network path to PostgreSQL goes silent (a partition, a host that died without
 * closing its connections) nothing tells the client. A connection that has a statement in flight
 * waits for TCP retransmissions to give up (about 15 minutes on Linux), and an idle one looks healthy
 * until it is handed a statement. postgres.js would keep pipelining statements onto such connections
 * after the database is reachable again, so the engine would not recover without a restart. Once the
 * circuit breaker has seen PostgreSQL fail several statements in a row (db/breaker.ts), every socket
 * to that server is suspect: they are destroyed, their statements fail at once, and postgres.js opens
 * fresh connections on demand when the probe gets through.
 *
 * postgres.js accepts a `socket` factory; it writes its startup message straight away, which a
 * connecting net.Socket buffers, and its own connect_timeout still covers connect plus handshake.
 */

type Target = { host: string[]; port: number[]; path?: string | false };

const byServer = new Map<string, Set<net.Socket>>();

/** The key a server's sockets are filed under: what a breaker for that database URL cuts. */
export function serverKey(target: Target): string {
  return target.path ? `unix:${target.path}` : `${target.host[0]}:${target.port[0]}`;
}

/** The socket factory handed to postgres.js. Several hosts are tried in turn, as postgres.js itself does. */
export function trackedSocketFactory(): (target: Target) => net.Socket {
  let next = 0;
  return (target) => {
    const key = serverKey(target);
    let socket: net.Socket;
    if (target.path) {
      socket = net.connect(target.path);
    } else {
      const i = next++ % target.host.length;
      socket = net.connect({ host: target.host[i] as string, port: target.port[i] ?? (target.port[0] as number) });
    }
    let set = byServer.get(key);
    if (!set) byServer.set(key, (set = new Set()));
    set.add(socket);
    socket.once('close', () => {
      set.delete(socket);
      if (set.size === 0 && byServer.get(key) === set) byServer.delete(key);
    });
    return socket;
  };
}

/** Destroys every socket to the server; returns how many. Their statements fail with `reason`. */
export function cutSockets(key: string, reason: string): number {
  const set = byServer.get(key);
  if (!set) return 0;
  const sockets = [...set];
  for (const socket of sockets) {
    socket.destroy(Object.assign(new Error(reason), { code: 'ECONNRESET' }));
  }
  return sockets.length;
}
