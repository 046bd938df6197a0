import { randomBytes } from 'node:crypto';

/** Standard Webhooks secrets: `whsec_` + base64 of 32 random bytes; the bytes are the HMAC key. */
export function newWebhookSecret(): { key: Buffer; text: string } {
  const key = randomBytes(32);
  return { key, text: `whsec_${key.toString('base64')}` };
}

/** The HMAC key inside a `whsec_` secret, or undefined when the text is not one (32 bytes of base64). */
export function webhookSecretKey(text: string): Buffer | undefined {
  if (!/^whsec_[A-Za-z0-9+/]+={0,2}$/.test(text)) return undefined;
  const key = Buffer.from(text.slice('whsec_'.length), 'base64');
  return key.length === 32 ? key : undefined;
}
