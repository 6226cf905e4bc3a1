/**
 * The admin API of a running control plane, as the CLI's configuration commands (`apply`,
 * `delete`, `get`) talk to it. Every failure to talk is a coded error that names the URL
 * and says what to do.
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { KINDS, type Kind } from '../api/kinds.js';
import { CODES, type Code } from '../core/codes.js';
import { TrellisError } from '../core/errors.js';

export const DEFAULT_CONTROL_PLANE_URL = 'http://127.0.0.1:15014';
export const CONTROL_PLANE_ENV = 'TRELLIS_CONTROL_PLANE';
/** A local control plane answers in milliseconds; this only bounds a black-holed address. */
export const REQUEST_TIMEOUT_MS = 10_000;

export const CONTROL_PLANE_FLAG = { 'control-plane': { type: 'string' } } as const;
export const CONTROL_PLANE_USAGE = `      --control-plane URL      Admin API of the control plane (default $${CONTROL_PLANE_ENV}, else ${DEFAULT_CONTROL_PLANE_URL})`;

export interface Answer {
  readonly status: number;
  readonly body: Record<string, unknown>;
}

/** The URL from the flag, else the environment, else the default; `host:port` means http. */
export function controlPlaneUrl(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): URL {
  const fromEnv = env[CONTROL_PLANE_ENV];
  const raw = flag ?? (fromEnv !== undefined && fromEnv !== '' ? fromEnv : DEFAULT_CONTROL_PLANE_URL);
  const where = flag === undefined ? `$${CONTROL_PLANE_ENV}` : '--control-plane';
  let url: URL;
  try {
    url = new URL(raw.includes('://') ? raw : `http://${raw}`);
  } catch {
    throw new TrellisError('TRELLIS_CLI_USAGE', `${where} must be a URL such as ${DEFAULT_CONTROL_PLANE_URL} (got "${raw}")`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TrellisError('TRELLIS_CLI_USAGE', `${where} must be an http:// or https:// URL (got "${raw}")`);
  return url;
}

export class ControlPlaneClient {
  readonly base: URL;

  constructor(base: URL) {
    this.base = base;
  }

  /** The answer of any status with a JSON object body; throws a coded error otherwise. */
  async request(method: string, path: string, options: { body?: string; headers?: Record<string, string> } = {}): Promise<Answer> {
    const url = new URL(path, this.base);
    let status: number;
    let text: string;
    try {
      ({ status, text } = await send(url, method, options.body, options.headers ?? {}));
    } catch (err) {
      throw new TrellisError('TRELLIS_CLI_CONTROL_PLANE_UNREACHABLE',
        `cannot reach the control plane at ${this.base.origin} (${reasonOf(err)}). Is it running? Start one with "trellis control-plane --config DIR", ` +
        `or point --control-plane or $${CONTROL_PLANE_ENV} at its admin API`, { cause: err });
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw new TrellisError('TRELLIS_CLI_CONTROL_PLANE_ERROR', `${url.origin} answered ${method} ${url.pathname} with status ${status} and no Trellis JSON; is it the admin API of a Trellis control plane of this version?`);
    }
    return { status, body: body as Record<string, unknown> };
  }
}

/**
 * One request with `node:http(s)` rather than fetch, which refuses the ports of the
 * WHATWG "bad port" list (1, 6000, 6665...), any of which an admin API may be given.
 */
function send(url: URL, method: string, body: string | undefined, headers: Record<string, string>): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, { method, headers, timeout: REQUEST_TIMEOUT_MS }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error(`no answer within ${REQUEST_TIMEOUT_MS / 1000} s`), { code: 'ETIMEDOUT' })));
    req.on('error', reject);
    req.end(body);
  });
}

/** `{error: {code, message}}` of an admin API answer, if it is one. */
export function errorOf(answer: Answer): { code: string; message: string; [k: string]: unknown } | undefined {
  const e = answer.body.error as { code?: unknown; message?: unknown } | undefined;
  return typeof e?.code === 'string' && typeof e.message === 'string' ? (e as { code: string; message: string }) : undefined;
}

/**
 * An error answer as the command's error: the server's own code when it is one of ours
 * (`TRELLIS_ADMIN_CONFIG_NOT_FOUND`), else TRELLIS_CLI_CONTROL_PLANE_ERROR.
 */
export function answerError(answer: Answer): TrellisError {
  const e = errorOf(answer);
  if (e === undefined) return new TrellisError('TRELLIS_CLI_CONTROL_PLANE_ERROR', `the control plane answered with unexpected status ${answer.status}`);
  return Object.hasOwn(CODES, e.code) ? new TrellisError(e.code as Code, e.message) : new TrellisError('TRELLIS_CLI_CONTROL_PLANE_ERROR', `${e.message} [${e.code}]`);
}

export interface ResourceRef {
  readonly kind: Kind;
  /** '' for a kind without namespaces. */
  readonly namespace: string;
  readonly name: string;
}

/** `/v1/config/<kind>/<namespace>/<name>`, without the namespace for a kind that has none. */
export function refPath(r: ResourceRef): string {
  const parts = KINDS[r.kind].namespaced ? [r.kind.toLowerCase(), r.namespace, r.name] : [r.kind.toLowerCase(), r.name];
  return `/v1/config/${parts.map(encodeURIComponent).join('/')}`;
}

function reasonOf(err: unknown): string {
  const code = (err as { code?: unknown } | undefined)?.code;
  if (code === 'ECONNREFUSED') return 'connection refused';
  if (code === 'ETIMEDOUT') return `no answer within ${REQUEST_TIMEOUT_MS / 1000} s`;
  return typeof code === 'string' ? code : err instanceof Error ? err.message : String(err);
}
