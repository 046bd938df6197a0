import { randomBytes } from 'node:crypto';

/** Standard Webhooks secrets: `whsec_` + base64 of 32 random bytes; the bytes are the HMAC key. */
export function newWebhookSecret(): { key: Buffer; text: string } {
  const key = randomBytes(32);
  return { key, text: `whsec_${key.toString('base64')}` };
}
