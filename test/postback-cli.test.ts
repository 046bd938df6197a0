import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runPostbackCli } from '../src/cli/postback.js';
import type { Sql } from '../src/db/database.js';
import { freshDatabase, type TestDatabase } from './helpers/db.js';
import { ADMIN, TEST_TRAFFIC_FRAUD } from './helpers/engine.js';
import { uniqueTx } from './helpers/postback.js';
import { runCommand, spawnEngine, type CommandRun, type EngineProcess } from './helpers/process.js';

/**
 * `npm run postback` against a real engine process: each signing method is accepted and lands in
 * PostgreSQL, a wrong secret gets the engine's 401 and a non-zero exit, and `--print`'s curl command
 * is itself a valid postback.
 */

const ISSUER = 'https://adv.example';
const BROWSER_UA = 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0';
let db: TestDatabase;
let sql: Sql;
let engine: EngineProcess;
let keyDir: string;
let advertiserId: string;
let secret: string;
let offerId: string;
let publisherId: string;
let ecPem: string;
let edJwk: string;

/** The CLI as a process, as `npm run postback` starts it: exit code and output streams are its interface. */
const cliProcess = (args: string[], env: Record<string, string> = {}) =>
  // Only what the test gives (runCommand passes PATH and HOME): a POSTBACK_SECRET or PORT in the developer's shell must not leak in.
  runCommand(process.execPath, ['--import', 'tsx', 'src/cli/postback.ts', '--engine', engine.url, '--advertiser', advertiserId, ...args], env);

/** The same CLI through its main function (a process start costs a second or two per call). */
async function cli(args: string[], env: Record<string, string> = {}): Promise<CommandRun> {
  let stdout = '';
  let stderr = '';
  const io = { out: (t: string) => (stdout += t), err: (t: string) => (stderr += t) };
  const code = await runPostbackCli(['--engine', engine.url, '--advertiser', advertiserId, ...args], env, io);
  return { code, stdout, stderr };
}

/** The JSON the CLI printed after its `HTTP <status>` line. */
function answer(out: string): { status: number; body: Record<string, any> } {
  const match = /^HTTP (\d{3})\n([\s\S]*)$/.exec(out);
  if (!match) throw new Error(`unexpected CLI output: ${out}`);
  return { status: Number(match[1]), body: JSON.parse(match[2] as string) };
}

async function api(method: string, route: string, body?: object) {
  const res = await fetch(`${engine.url}${route}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const json = (await res.json()) as Record<string, any>;
  if (res.status !== 201) throw new Error(`${route} -> ${res.status} ${JSON.stringify(json)}`);
  return json;
}

async function click(): Promise<string> {
  // A visitor's browser: fetch's own user agent ("node") is rightly scored as a bot's.
  const res = await fetch(`${engine.url}/c/${offerId}?pub=${publisherId}`, { redirect: 'manual', headers: { 'user-agent': BROWSER_UA } });
  expect(res.status).toBe(302);
  return new URL(res.headers.get('location') as string).searchParams.get('cid') as string;
}

const conversion = async (txid: string) =>
  (await sql`select id, click_id, event, status, payout_minor, revenue_minor, amount_minor, currency from conversions where advertiser_id = ${advertiserId} and txid = ${txid}`)[0];

function publicJwk(key: KeyObject, kid: string, alg: string) {
  return { ...key.export({ format: 'jwk' }), kid, alg, use: 'sig' };
}

beforeAll(async () => {
  db = await freshDatabase();
  sql = db.sql;
  engine = await spawnEngine({ DATABASE_URL: db.url, ADMIN_TOKEN: ADMIN });
  await engine.ready();
  keyDir = await mkdtemp(path.join(tmpdir(), 'pbe-cli-keys-'));

  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  ecPem = path.join(keyDir, 'ec.pem');
  await writeFile(ecPem, ec.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string);
  const ed = generateKeyPairSync('ed25519');
  edJwk = path.join(keyDir, 'ed.jwk.json');
  await writeFile(edJwk, JSON.stringify({ ...ed.privateKey.export({ format: 'jwk' }), kid: 'ed-1' }));

  const advertiser = await api('POST', '/v1/advertisers', {
    name: 'CLI advertiser',
    ipAllowlist: ['127.0.0.1/32', '::1/128'],
    auth: ['hmac', 'jwt'],
    jwt: { issuer: ISSUER, jwks: { keys: [publicJwk(ec.publicKey, 'ec-1', 'ES256'), publicJwk(ed.publicKey, 'ed-1', 'EdDSA')] } },
  });
  advertiserId = advertiser.id;
  secret = advertiser.secrets[0].secret;
  publisherId = (await api('POST', '/v1/publishers', { name: 'CLI publisher', postbackUrl: 'https://pub.example/pb?c={clickid}' })).id;
  offerId = (
    await api('POST', '/v1/offers', {
      advertiserId,
      name: 'CLI offer',
      url: 'https://adv.example/lp?cid={clickid}',
      payout: '2.50',
      currency: 'USD',
      // The tests send payouts other than the offer's on purpose: payout_mismatch is recorded, not scored.
      fraud: { rules: { ...TEST_TRAFFIC_FRAUD.rules, payout_mismatch: { mode: 'monitor' } } },
    })
  ).id;
}, 90_000);

afterAll(async () => {
  engine?.kill();
  await engine?.exited;
  await db?.drop();
  if (keyDir) await rm(keyDir, { recursive: true, force: true });
});

describe('npm run postback', () => {
  it('GET with the query HMAC: accepted, committed with the offer defaults, the secret printed nowhere', async () => {
    const [clickid, txid] = [await click(), uniqueTx()];
    const out = await cli(['--clickid', clickid, '--txid', txid], { POSTBACK_SECRET: secret });
    expect(out.code).toBe(0);
    const { status, body } = answer(out.stdout);
    expect(status).toBe(200);
    expect(body).toMatchObject({ decision: 'accepted', duplicate: false, status: 'approved' });
    expect(await conversion(txid)).toMatchObject({ id: body.conversionId, click_id: clickid, event: 'conversion', payout_minor: 250n, currency: 'USD' });
    expect(out.stdout + out.stderr).not.toContain(secret.slice('whsec_'.length));
  });

  it('POST with Standard Webhooks headers over the JSON body: every field it was given is stored', async () => {
    const [clickid, txid] = [await click(), uniqueTx()];
    const out = await cli(
      ['--method', 'POST', '--clickid', clickid, '--txid', txid, '--event', 'sale', '--status', 'pending', '--payout', '3.10', '--revenue', '4.00', '--amount', '40.00'],
      { POSTBACK_SECRET: secret },
    );
    expect(out.code).toBe(0);
    expect(answer(out.stdout)).toMatchObject({ status: 200, body: { decision: 'accepted', status: 'pending', duplicate: false } });
    expect(await conversion(txid)).toMatchObject({ event: 'sale', status: 'pending', payout_minor: 310n, revenue_minor: 400n, amount_minor: 4000n });

    // The same txid again is the engine's duplicate, not a second conversion.
    const again = await cli(['--method', 'POST', '--clickid', clickid, '--txid', txid, '--status', 'pending', '--payout', '3.10'], { POSTBACK_SECRET: secret });
    expect(answer(again.stdout).body).toMatchObject({ duplicate: true });
    expect(await sql`select count(*)::int as n from conversions where txid = ${txid}`).toEqual([{ n: 1 }]);
  });

  it('JWT from a PEM key (POST, bearer) and from a JWK (GET, ?token=): both accepted and stored', async () => {
    const [c1, t1] = [await click(), uniqueTx()];
    const viaPem = await cli(['--method', 'POST', '--jwt-key', ecPem, '--issuer', ISSUER, '--kid', 'ec-1', '--clickid', c1, '--txid', t1, '--payout', '1.25']);
    expect(viaPem.code).toBe(0);
    expect(answer(viaPem.stdout)).toMatchObject({ status: 200, body: { decision: 'accepted' } });
    expect(await conversion(t1)).toMatchObject({ click_id: c1, payout_minor: 125n });

    const [c2, t2] = [await click(), uniqueTx()];
    const viaJwk = await cli(['--jwt-key', edJwk, '--issuer', ISSUER, '--clickid', c2, '--txid', t2]);
    expect(viaJwk.code).toBe(0);
    expect(answer(viaJwk.stdout)).toMatchObject({ status: 200, body: { decision: 'accepted' } });
    expect(await conversion(t2)).toMatchObject({ click_id: c2, payout_minor: 250n });
  });

  it('a wrong secret gets the engine 401 bad_signature and exit 1; nothing is stored, the refusal is logged', async () => {
    const [clickid, txid] = [await click(), uniqueTx()];
    const wrong = `whsec_${Buffer.alloc(32, 7).toString('base64')}`;
    for (const method of ['GET', 'POST']) {
      const out = await cliProcess(['--method', method, '--clickid', clickid, '--txid', txid], { POSTBACK_SECRET: wrong });
      expect(out.code).toBe(1);
      expect(answer(out.stdout)).toMatchObject({ status: 401, body: { error: { code: 'bad_signature' } } });
    }
    // A JWT signed by a key the advertiser does not have is refused the same way.
    const stranger = path.join(keyDir, 'stranger.pem');
    await writeFile(stranger, generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'pkcs8' }) as string);
    const jwt = await cliProcess(['--jwt-key', stranger, '--issuer', ISSUER, '--kid', 'ec-1', '--clickid', clickid, '--txid', txid]);
    expect(jwt.code).toBe(1);
    expect(answer(jwt.stdout)).toMatchObject({ status: 401, body: { error: { code: 'bad_token' } } });

    expect(await conversion(txid)).toBeUndefined();
    await expect
      .poll(async () => (await sql`select error_code from postback_attempts where txid = ${txid} order by id`).map((r) => r.error_code), { timeout: 5000 })
      .toEqual(['bad_signature', 'bad_signature', 'bad_token']);
  });

  it('--print gives curl commands that the engine accepts (GET, POST, JWT), without sending anything itself', async () => {
    for (const args of [[], ['--method', 'POST'], ['--jwt-key', ecPem, '--issuer', ISSUER, '--kid', 'ec-1']]) {
      const [clickid, txid] = [await click(), uniqueTx()];
      const printed = await cli([...args, '--clickid', clickid, '--txid', txid, '--payout', '2.75', '--print'], { POSTBACK_SECRET: secret });
      expect(printed.code).toBe(0);
      expect(printed.stdout).toMatch(/^curl /);
      expect(printed.stdout).not.toContain(secret.slice('whsec_'.length));
      expect(await conversion(txid)).toBeUndefined();

      const sent = await runCommand('bash', ['-c', printed.stdout]);
      expect(sent.code, sent.stderr).toBe(0);
      expect(sent.stdout).toMatch(/^HTTP\/1\.1 200 /);
      expect(JSON.parse(sent.stdout.slice(sent.stdout.indexOf('\r\n\r\n') + 4))).toMatchObject({ decision: 'accepted', duplicate: false });
      expect(await conversion(txid)).toMatchObject({ click_id: clickid, payout_minor: 275n });
    }
  });

  it('bad usage exits 2 with the usage text, sends nothing, and never echoes a malformed secret', async () => {
    const [clickid, txid] = [await click(), uniqueTx()];
    const noSecret = await cliProcess(['--clickid', clickid, '--txid', txid]);
    expect(noSecret.code).toBe(2);
    expect(noSecret.stderr).toContain('POSTBACK_SECRET');

    const typo = 'whsec_not-really-base64-S3CR3T';
    const bad = await cli(['--clickid', clickid, '--txid', txid, '--secret', typo]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--secret value is not a whsec_ secret');
    expect(bad.stdout + bad.stderr).not.toContain('S3CR3T');

    const help = await cli(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('usage: npm run postback --');
    expect(help.stdout).toContain('POSTBACK_SECRET');

    const noTxid = await cli(['--clickid', clickid], { POSTBACK_SECRET: secret });
    expect(noTxid.code).toBe(2);
    expect(noTxid.stderr).toContain('--txid is required');

    let unreachableErr = '';

    const unreachable = await runPostbackCli(['--engine', 'http://127.0.0.1:9', '--advertiser', advertiserId, '--clickid', clickid, '--txid', txid], { POSTBACK_SECRET: secret }, {
      out: () => undefined,
      err: (t) => (unreachableErr += t),
    });
    expect(unreachable).toBe(3);
    expect(unreachableErr).toContain('no answer from http://127.0.0.1:9');

    expect(await conversion(txid)).toBeUndefined();
    expect(await sql`select count(*)::int as n from postback_attempts where txid = ${txid}`).toEqual([{ n: 0 }]);
  });
});
