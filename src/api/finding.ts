/**
 * A finding: one problem or remark about configuration, from validation of a single
 * resource or from `trellis analyze` over a set. Validation, the control plane and
 * `analyze` all report findings in this shape.
 */
import { CODES, type Code, type Severity } from '../core/codes.js';

export interface ResourceRef {
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
}

export interface Finding {
  readonly code: Code;
  readonly severity: Severity;
  readonly message: string;
  /** File the finding comes from, as given by the caller (relative paths stay relative). */
  readonly file?: string;
  /** 1-based line and column in `file`. */
  readonly line?: number;
  readonly column?: number;
  /** Field path inside the resource, e.g. `spec.http[0].route[1].weight`. */
  readonly path?: string;
  readonly resource?: ResourceRef;
}

export function finding(code: Code, message: string, extra: Omit<Finding, 'code' | 'severity' | 'message'> = {}): Finding {
  return { code, severity: CODES[code].severity, message, ...extra };
}

/** `vs.yaml:14: spec.http[0].route[1].weight: must not be negative (got -5)` */
export function formatFinding(f: Finding): string {
  let out = '';
  if (f.file !== undefined) out += f.line === undefined ? `${f.file}: ` : `${f.file}:${f.line}: `;
  if (f.path !== undefined && f.path !== '') out += `${f.path}: `;
  return out + f.message;
}


export function formatResourceRef(r: ResourceRef): string {
  return `${r.kind} ${r.namespace}/${r.name}`;
}

const SEVERITY_ORDER: Readonly<Record<Severity, number>> = { error: 0, warning: 1, info: 2 };

/** Stable order for output: by file, line, then severity and code. */
export function compareFindings(a: Finding, b: Finding): number {
  return (
    (a.file ?? '').localeCompare(b.file ?? '') ||
    (a.line ?? 0) - (b.line ?? 0) ||
    SEVERITY_ORDER[a.severity] - SEVERITY_ORDER[b.severity] ||
    a.code.localeCompare(b.code) ||
    (a.path ?? '').localeCompare(b.path ?? '') ||
    a.message.localeCompare(b.message)
  );
}
