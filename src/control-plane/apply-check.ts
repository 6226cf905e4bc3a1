/**
 * Validation of configuration sent to `PUT /v1/config`, before anything is stored: the
 * loader's findings for the new documents, then `analyze` (the same cross-resource checks
 * as `trellis analyze`) over the configuration as it would be — the served resources with
 * the new ones replacing those of the same kind, namespace and name.
 *
 * What blocks: every error about the new documents, and every error the change would
 * cause elsewhere (a DestinationRule that drops a subset a served route uses). Errors the
 * served configuration already had are not the sender's doing, so they do not block —
 * otherwise one broken file in the directory would refuse every apply.
 */
import { analyze } from '../api/analyze/index.js';
import type { Finding } from '../api/finding.js';
import type { LoadResult } from '../api/load.js';
import { type AnyResource, keyOf } from '../api/resource.js';

export interface ApplyCheck {
  /** Findings about the new documents, and findings the change causes elsewhere. */
  readonly findings: readonly Finding[];
  /** True when some of those findings is an error: nothing may be stored. */
  readonly rejected: boolean;
}

/**
 * `incoming` is what the loader read from the request (its findings name `file`);
 * `served` is the store's current snapshot.
 */
export function checkApply(incoming: LoadResult, file: string, served: readonly AnyResource[], domain: string): ApplyCheck {
  const replaced = new Set(incoming.resources.map(keyOf));
  const before = new Set(analyze({ resources: served, workloads: [], findings: [] }, { domain }).map(identity));
  const after = analyze({
    resources: [...served.filter((r) => !replaced.has(keyOf(r))), ...incoming.resources],
    workloads: incoming.workloads,
    findings: incoming.findings,
  }, { domain });
  const findings = after.filter((f) => f.file === file || !before.has(identity(f)));
  return { findings, rejected: findings.some((f) => f.severity === 'error') };
}

/**
 * Whether deleting the applied resource `key` may go ahead: the errors the configuration
 * would have without it (with `restored`, the user's own definition it hid, back in
 * place) that it does not have now — a VirtualService left routing to a subset only the
 * deleted DestinationRule defined. Like a rejected apply, a rejected delete changes
 * nothing.
 */
export function checkDelete(key: string, served: readonly AnyResource[], restored: AnyResource | undefined, domain: string): ApplyCheck {
  const before = new Set(analyze({ resources: served, workloads: [], findings: [] }, { domain }).map(identity));
  const rest = served.filter((r) => keyOf(r) !== key);
  const after = analyze({ resources: restored === undefined ? rest : [...rest, restored], workloads: [], findings: [] }, { domain });
  const findings = after.filter((f) => f.severity === 'error' && !before.has(identity(f)));
  return { findings, rejected: findings.length > 0 };
}

/** A finding without its position: the same problem in an unchanged resource compares equal. */
function identity(f: Finding): string {
  const r = f.resource;
  return `${f.code}|${r === undefined ? '' : `${r.kind}/${r.namespace}/${r.name}`}|${f.path ?? ''}|${f.message}`;
}
