/** Header manipulation (`headers.request/response.set/add/remove`) and header-name rules. */
import type { Path } from '../schema/path.js';
import { type ParseContext, type Schema, object, record } from '../schema/schema.js';
import { string } from '../schema/scalars.js';
import { stringList } from '../common.js';

// RFC 7230 token characters, as Istio's ValidateHTTPHeaderName.
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

export function headerName(name: string, path: Path, ctx: ParseContext): boolean {
  if (TOKEN.test(name)) return true;
  ctx.report('TRELLIS_CONFIG_INVALID_VALUE', path, `"${name}" is not a valid header name`);
  return false;
}

export interface HeaderOperation {
  readonly set: Readonly<Record<string, string>>;
  readonly add: Readonly<Record<string, string>>;
  readonly remove: readonly string[];
}

export interface HeaderOperations {
  readonly request?: HeaderOperation;
  readonly response?: HeaderOperation;
}

const headerValues = record(string(), headerName);

const headerOperation: Schema<HeaderOperation> = object(
  { set: headerValues, add: headerValues, remove: stringList },
  { map: (v) => ({ set: v.set ?? {}, add: v.add ?? {}, remove: v.remove ?? [] }) },
);

export const headerOperations: Schema<HeaderOperations> = object({ request: headerOperation, response: headerOperation });
