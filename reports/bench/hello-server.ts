import Fastify from 'fastify';

/**
 * The baseline: the smallest fastify server, on the same Node and machine as the engine. Every
 * engine figure is read as a ratio to this one, measured in the same run, so a slower or busier
 * machine moves both and the ratio stays meaningful.
 */

const app = Fastify({ logger: false });
app.get('/', async () => ({ hello: 'world' }));

const port = Number(process.env.PORT ?? 0);
await app.listen({ port, host: '127.0.0.1' });

const stop = () => {
  app.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
