import Fastify from 'fastify';
import { serveUntilSignalled } from './serve.js';

/**
 * The baseline: the smallest fastify server, on the same Node and machine as the engine. Every
 * engine figure is read as a ratio to this one, measured in the same run, so a slower or busier
 * machine moves both and the ratio stays meaningful.
 */

const app = Fastify({ logger: false });
app.get('/', async () => ({ hello: 'world' }));

await serveUntilSignalled(app);
