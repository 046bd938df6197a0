import { createPrivateKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { webhookSecretKey } from '../admin/secrets.js';
import { POSTBACK_FIELDS, signedPostback, toCurl, type PostbackValues, type SignedRequest, type Signing } from '../postback/signed-request.js';

/**
 * `npm run postback -- ...`: signs a test postback the way an advertiser's server must (GET query HMAC,
 * POST Standard Webhooks, or a JWT) and sends it, printing the engine's answer; `--print` prints a curl
 * command instead. The secret comes from POSTBACK_SECRET (or --secret) and is never printed.
 * Exit codes: 0 the engine answered 2xx, 1 it refused the postback, 2 bad usage, 3 no answer.
 */

export const USAGE = `usage: npm run postback -- --advertiser <id> --clickid <id> --txid <id> [options]
  --engine <url>        the engine (default http://127.0.0.1:$PORT, PORT default 8080)
  --advertiser <id>     the advertiser ID (adv_...)
  --clickid, --txid     the click ID from the click redirect, your transaction ID
  --event, --status, --payout, --revenue, --amount, --currency, --ip, --ua
                        optional postback fields (left out when not given: the engine's defaults apply)
  --method GET|POST     GET: query signed with &ts=&sig=; POST: JSON body with Standard Webhooks headers (default GET)
  --secret <whsec_...>  the advertiser's secret; better: export POSTBACK_SECRET=whsec_... (never printed)
  --jwt-key <file>      sign a JWT instead, with this private key (JWK, JWKS or PEM); needs --issuer
  --issuer <iss>        the advertiser's configured JWT issuer
  --kid <kid>           the key ID in the JWT header (default the JWK's kid)
  --alg <alg>           the JWT algorithm (default from the key: ES256, ES384, ES512, RS256, PS256, EdDSA)
  --webhook-id <id>     POST: the webhook-id to send (default a random one; reuse it to test replays)
  --timestamp <unix s>  the signed time (default now; an old one shows stale_signature)
  --print               print a curl command for the signed postback instead of sending it
  --help                this text
exit codes: 0 accepted (2xx), 1 refused by the engine, 2 bad usage, 3 the engine did not answer`;

export class UsageError extends Error {}

export type Io = { out: (text: string) => void; err: (text: string) => void };

const SEND_TIMEOUT_MS = 10_000;

export async function runPostbackCli(argv: string[], env: NodeJS.ProcessEnv, io: Io, nowS = Math.floor(Date.now() / 1000)): Promise<number> {
  let request: SignedRequest;
  let print: boolean;
  try {
    const parsed = parseCommandLine(argv);
    if (parsed === 'help') {
      io.out(`${USAGE}\n`);
      return 0;
    }
    print = parsed.print;
    request = await signedPostback({ ...parsed.postback, engineUrl: parsed.engineUrl ?? `http://127.0.0.1:${env.PORT || '8080'}`, signing: signingFrom(parsed, env), nowS: parsed.timestamp ?? nowS });
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    io.err(`${err.message}\n${USAGE}\n`);
    return 2;
  }
  if (print) {
    io.out(`${toCurl(request)}\n`);
    return 0;
  }
  let response: Response;
  try {
    response = await fetch(request.url, {
      method: request.method,
      headers: request.headers,
      body: request.body,
      redirect: 'manual',
      signal: AbortSignal.timeout(SEND_TIMEOUT_MS),
    });
  } catch (err) {
    io.err(`no answer from ${new URL(request.url).origin}: ${describeFetchError(err)}\n`);
    return 3;
  }
  const text = await response.text();
  io.out(`HTTP ${response.status}\n${prettyJson(text)}\n`);
  return response.ok ? 0 : 1;
}

type ParsedCommandLine = {
  engineUrl: string | undefined;
  postback: { advertiserId: string; method: 'GET' | 'POST'; fields: PostbackValues };
  secret: string | undefined;
  jwt: { keyFile: string; issuer: string; kid: string | undefined; alg: string | undefined } | undefined;
  webhookId: string | undefined;
  timestamp: number | undefined;
  print: boolean;
};

const fieldOptions = Object.fromEntries(POSTBACK_FIELDS.map((name) => [name, { type: 'string' as const }]));

function parseCommandLine(argv: string[]): ParsedCommandLine | 'help' {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        ...fieldOptions,
        engine: { type: 'string' },
        advertiser: { type: 'string' },
        method: { type: 'string' },
        secret: { type: 'string' },
        'jwt-key': { type: 'string' },
        issuer: { type: 'string' },
        kid: { type: 'string' },
        alg: { type: 'string' },
        'webhook-id': { type: 'string' },
        timestamp: { type: 'string' },
        print: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (values.help) return 'help';
  const text = (name: string) => (typeof values[name] === 'string' ? (values[name] as string) : undefined);
  const advertiserId = text('advertiser');
  if (!advertiserId) throw new UsageError('--advertiser is required');
  for (const required of ['clickid', 'txid']) if (text(required) === undefined) throw new UsageError(`--${required} is required`);
  const method = (text('method') ?? 'GET').toUpperCase();
  if (method !== 'GET' && method !== 'POST') throw new UsageError('--method must be GET or POST');
  const engineUrl = text('engine');
  if (engineUrl !== undefined && !/^https?:\/\/[^/]/.test(engineUrl)) throw new UsageError('--engine must be an http(s) URL such as http://127.0.0.1:8080');
  const timestampText = text('timestamp');
  if (timestampText !== undefined && !/^\d{1,12}$/.test(timestampText)) throw new UsageError('--timestamp must be Unix seconds');
  const keyFile = text('jwt-key');
  const issuer = text('issuer');
  if (keyFile === undefined && (issuer !== undefined || text('kid') !== undefined || text('alg') !== undefined)) {
    throw new UsageError('--issuer, --kid and --alg go with --jwt-key');
  }
  if (keyFile !== undefined && issuer === undefined) throw new UsageError('--jwt-key needs --issuer (the issuer configured for the advertiser)');
  const fields: PostbackValues = {};
  for (const name of POSTBACK_FIELDS) if (text(name) !== undefined) fields[name] = text(name);
  return {
    engineUrl,
    postback: { advertiserId, method, fields },
    secret: text('secret'),
    jwt: keyFile === undefined ? undefined : { keyFile, issuer: issuer as string, kid: text('kid'), alg: text('alg') },
    webhookId: text('webhook-id'),
    timestamp: timestampText === undefined ? undefined : Number(timestampText),
    print: values.print === true,
  };
}

function signingFrom(parsed: ParsedCommandLine, env: NodeJS.ProcessEnv): Signing {
  if (parsed.jwt) {
    const { key, alg, kid } = loadJwtKey(parsed.jwt.keyFile, parsed.jwt.kid, parsed.jwt.alg);
    return { kind: 'jwt', signer: { key, alg, kid, issuer: parsed.jwt.issuer, ttlS: 300 } };
  }
  const secret = parsed.secret ?? env.POSTBACK_SECRET;
  if (secret === undefined || secret === '') throw new UsageError('a secret is required: export POSTBACK_SECRET=whsec_... (or --secret), or sign a JWT with --jwt-key');
  // The message names the source, never the text: the secret must not reach a terminal or a log.
  const key = webhookSecretKey(secret);
  if (!key) throw new UsageError(`the ${parsed.secret !== undefined ? '--secret' : 'POSTBACK_SECRET'} value is not a whsec_ secret (whsec_ and the base64 of 32 bytes)`);
  return { kind: 'hmac', key, webhookId: parsed.webhookId };
}

/** A private key from a PEM file, a JWK or a JWKS (the key with `d`, matching --kid when given). */
export function loadJwtKey(file: string, kid: string | undefined, alg: string | undefined): { key: KeyObject; alg: string; kid: string | undefined } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read --jwt-key ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  if (text.trimStart().startsWith('{')) {
    let json: { keys?: unknown; kid?: unknown; alg?: unknown; d?: unknown };
    try {
      json = JSON.parse(text) as typeof json;
    } catch {
      throw new UsageError(`--jwt-key ${file} is not valid JSON`);
    }
    const candidates = (Array.isArray(json.keys) ? json.keys : [json]) as Array<Record<string, unknown>>;
    const jwk = candidates.find((k) => typeof k === 'object' && k !== null && 'd' in k && (kid === undefined || k.kid === kid));
    if (!jwk) throw new UsageError(`--jwt-key ${file} holds no private key${kid === undefined ? '' : ` with kid ${kid}`} (a JWK with "d")`);
    const key = privateKey(() => createPrivateKey({ key: jwk as never, format: 'jwk' }), file);
    const jwkAlg = typeof jwk.alg === 'string' ? jwk.alg : undefined;
    return { key, alg: alg ?? jwkAlg ?? algorithmFor(key, file), kid: kid ?? (typeof jwk.kid === 'string' ? jwk.kid : undefined) };
  }
  const key = privateKey(() => createPrivateKey(text), file);
  return { key, alg: alg ?? algorithmFor(key, file), kid };
}

function privateKey(load: () => KeyObject, file: string): KeyObject {
  try {
    return load();
  } catch {
    throw new UsageError(`--jwt-key ${file} is not a private key (PEM: PKCS#8, SEC1 or PKCS#1; or a JWK with "d")`);
  }
}

const CURVE_ALGORITHMS: Record<string, string> = { prime256v1: 'ES256', secp384r1: 'ES384', secp521r1: 'ES512' };

function algorithmFor(key: KeyObject, file: string): string {
  const type = key.asymmetricKeyType;
  if (type === 'ec') {
    const alg = CURVE_ALGORITHMS[key.asymmetricKeyDetails?.namedCurve ?? ''];
    if (alg) return alg;
  }
  if (type === 'rsa') return 'RS256';
  if (type === 'rsa-pss') return 'PS256';
  if (type === 'ed25519') return 'EdDSA';
  throw new UsageError(`--jwt-key ${file}: no JWT algorithm known for this key type; give --alg`);
}

function prettyJson(text: string): string {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

function describeFetchError(err: unknown): string {
  if (err instanceof Error && err.name === 'TimeoutError') return `no answer within ${SEND_TIMEOUT_MS / 1000} s`;
  const cause = err instanceof Error ? (err.cause as { code?: string; message?: string } | undefined) : undefined;
  return cause?.code ?? cause?.message ?? (err instanceof Error ? err.message : String(err));
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  runPostbackCli(process.argv.slice(2), process.env, { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) }).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`postback failed: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
