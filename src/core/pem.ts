/**
 * PEM checks shared by the proxy (which loads certificate material when a TLS context
 * arrives and NACKs what it cannot load) and `trellis analyze` (which warns about the same
 * files before a proxy sees them): one notion of "a loadable certificate" and "a loadable
 * private key", each caller wording its own message. Never returns the material itself.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';

/** Each PEM certificate block of a text (a chain or a CA bundle holds several). */
export const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

const PEM_PRIVATE_KEY = /-----BEGIN [A-Z ]*PRIVATE KEY-----/;

/** Why PEM text cannot be loaded: it holds none of what was wanted, or one that does not parse (`detail`: the parser's message). */
export type PemProblem = { readonly kind: 'none' } | { readonly kind: 'unparsable'; readonly detail: string };

const NONE: PemProblem = { kind: 'none' };

/** Undefined when `text` holds at least one certificate and every one parses. */
export function certificatesProblem(text: string): PemProblem | undefined {
  const blocks = text.match(PEM_CERTIFICATE);
  if (blocks === null) return NONE;
  for (const block of blocks) {
    try {
      new X509Certificate(block);
    } catch (err) {
      return { kind: 'unparsable', detail: (err as Error).message };
    }
  }
  return undefined;
}

/** Undefined when `text` holds a private key Node can load (an encrypted one cannot be: there is no passphrase). */
export function privateKeyProblem(text: string): PemProblem | undefined {
  if (!PEM_PRIVATE_KEY.test(text)) return NONE;
  try {
    createPrivateKey(text);
    return undefined;
  } catch (err) {
    return { kind: 'unparsable', detail: (err as Error).message };
  }
}
