import type { FastifyInstance } from 'fastify';

/** For the bench's bare servers: listen on PORT (127.0.0.1), close and exit on SIGTERM or SIGINT. */
export async function serveUntilSignalled(app: FastifyInstance): Promise<void> {
  await app.listen({ port: Number(process.env.PORT ?? 0), host: '127.0.0.1' });
  const stop = () => {
    app.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
