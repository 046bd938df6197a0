import { randomBytes } from 'node:crypto';
import Fastify from 'fastify';
import { mintClickId, verifyClickId } from '../../src/click/click-id.js';
import { verifyQuerySignature } from '../../src/postback/hmac.js';
import { webhookKey } from './signing.js';
import { serveUntilSignalled } from './serve.js';

/**
 * The floor: a bare fastify server that does only the cryptography the contract cannot do without,
 * with the engine's own functions, and nothing else. No catalog, no validation, no rate limit, no
 * fraud state, no database.
 * - `GET /c/:offerId` mints a click ID (one HMAC) and redirects, recording nothing.
 * - `GET /postback/:advertiserId` checks the GET signature and the click ID (two HMACs) and gives
 *   a duplicate's answer, looking nothing up.
 * Measured in the same run as the hello-world, it shows how much of the ratio that cryptography
 * alone takes on this machine: whatever the engine does on top must fit in what is left.
 */

const SIGNATURE_TOLERANCE_S = 300;
const secret = process.env.FLOOR_WEBHOOK_SECRET;
if (!secret) throw new Error('FLOOR_WEBHOOK_SECRET (whsec_...) is required');
const secrets = [{ id: 'sec_floor', key: webhookKey(secret), createdAt: new Date() }];
const clickKey = { kid: 1, secret: randomBytes(32) };
const clickKeys = new Map([[clickKey.kid, clickKey]]);
const answer = JSON.stringify({ conversionId: 'cnv_floor', decision: 'accepted', reasons: [], duplicate: true });

const app = Fastify({ logger: false });
app.get('/healthz', () => 'ok');
app.get('/c/:offerId', (_request, reply) => {
  const clickId = mintClickId(clickKey, { advertiserSeq: 1, offerSeq: 1, publisherSeq: 1 });
  return reply.redirect(`https://adv.example/lp?cid=${clickId}`, 302);
});
app.get<{ Querystring: { clickid?: string } }>('/postback/:advertiserId', (request, reply) => {
  const nowS = Math.floor(Date.now() / 1000);
  const signature = verifyQuerySignature(request.url, secrets, nowS, SIGNATURE_TOLERANCE_S);
  if (!signature.ok) return reply.code(401).send({ error: { code: signature.code, message: signature.message } });
  const click = verifyClickId(request.query.clickid ?? '', clickKeys);
  if (!click.ok) return reply.code(422).send({ error: { code: 'invalid_click', message: click.reason } });
  return reply.code(200).header('content-type', 'application/json; charset=utf-8').send(answer);
});

await serveUntilSignalled(app);
