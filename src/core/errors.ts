/**
 * Errors with stable codes. Users match on `code`, never on the message; a code is never
 * reused for another meaning. Every code is listed, with what to do about it, in
 * `docs/errors.md` (a test keeps the two in sync). Pattern from undici `lib/core/errors.js`
 * and fastify `lib/errors.js`.
 */
import type { Code } from './codes.js';

export class TrellisError extends Error {
  readonly code: Code;

  constructor(code: Code, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TrellisError';
    this.code = code;
  }
}

/** True when `err` is a TrellisError, optionally with the given code. */
export function isTrellisError(err: unknown, code?: Code): err is TrellisError {
  return err instanceof TrellisError && (code === undefined || err.code === code);
}

