import Fastify from 'fastify';
import { serveUntilSignalled } from './serve.js';

/**
 * The hello-world's route doing `SPIN_US` microseconds of pure CPU work before a 302, for
 * work-amplification.ts: what a microsecond of work per request costs in throughput on this machine.
 */

const spinUs = Number(process.env.SPIN_US ?? 0);
const app = Fastify({ logger: false });
app.get('/healthz', () => 'ok');
app.get('/c/:offerId', (_request, reply) => {
  const until = performance.now() + spinUs / 1000;
  while (performance.now() < until) {
    // busy: the work a real route would do
  }
  return reply.redirect('https://adv.example/lp?cid=spin', 302);
});

await serveUntilSignalled(app);
