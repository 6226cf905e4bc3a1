/** The admin API's request and reply plumbing, shared by its route modules. */
import type { IncomingMessage } from 'node:http';
import type { Code } from '../../core/codes.js';

export interface Reply {
  readonly status: number;
  readonly body?: unknown;
}

export type Handler = (req: IncomingMessage, url: URL, params: string[]) => Promise<Reply> | Reply;

/** `[method, path pattern, handler]`; the pattern's groups are the handler's `params`. */
export type Route = readonly [string, RegExp, Handler];

export function error(status: number, code: Code, message: string, extra: Record<string, unknown> = {}): Reply {
  return { status, body: { error: { code, message, ...extra } } };
}

export type BodyResult<T> = { ok: true; value: T } | { ok: false; error: string };

/** The request body as UTF-8 text, refusing more than `maxBytes`. */
export async function readText(req: IncomingMessage, maxBytes: number): Promise<BodyResult<string>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > maxBytes) return { ok: false, error: `request body is larger than ${maxBytes} bytes` };
    chunks.push(chunk as Buffer);
  }
  return { ok: true, value: Buffer.concat(chunks).toString('utf8') };
}

/** The request body as JSON (an empty body is `{}`). */
export async function readJson(req: IncomingMessage, maxBytes: number): Promise<BodyResult<unknown>> {
  const text = await readText(req, maxBytes);
  if (!text.ok) return text;
  if (text.value.trim() === '') return { ok: true, value: {} };
  try {
    return { ok: true, value: JSON.parse(text.value) };
  } catch (err) {
    return { ok: false, error: `request body is not JSON: ${err instanceof Error ? err.message : String(err)}` };
  }
}
