/**
 * Configuration applied at run time (`trellis apply` / `trellis delete` through the admin
 * API), stored as files in `<configDir>/applied/`, one resource per file named
 * `<kind>.<namespace>.<name>.yaml`. Files, not memory, so that what was applied survives
 * a restart of the control plane and can be read, diffed and backed up like the rest of
 * the directory; the config store reads them like any other file (and lets them win over
 * the user's own files).
 *
 * Writes are atomic (temporary file, fsync, rename): the watcher and a restart see the
 * old content or the new, never half a file. Temporary names start with a dot, which the
 * store skips.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { isDns1123Label, isDns1123Subdomain } from '../api/common.js';
import type { Finding } from '../api/finding.js';
import { KINDS, type Kind } from '../api/kinds.js';
import { loadText } from '../api/load.js';
import { type AnyResource, keyOf } from '../api/resource.js';
import { readYaml } from '../api/yaml-source.js';
import { TrellisError } from '../core/errors.js';
import { checkApply, checkDelete } from './apply-check.js';
import { APPLIED_DIR, type ConfigStore } from './config-store.js';

export const APPLY_RESULTS = ['created', 'configured', 'unchanged'] as const;
export type ApplyResult = (typeof APPLY_RESULTS)[number];

export interface AppliedResource {
  readonly kind: Kind;
  readonly namespace: string;
  readonly name: string;
  /** Relative to the config directory. */
  readonly file: string;
  readonly result: ApplyResult;
}

export type ApplyOutcome =
  | { readonly ok: true; readonly resources: readonly AppliedResource[]; readonly findings: readonly Finding[] }
  | { readonly ok: false; readonly reason: 'invalid' | 'empty'; readonly findings: readonly Finding[] };

export type DeleteOutcome =
  | { readonly ok: true; readonly file: string; readonly restored?: { readonly file: string; readonly line: number } }
  | { readonly ok: false; readonly reason: 'not-found' }
  | { readonly ok: false; readonly reason: 'not-applied'; readonly file: string; readonly line: number }
  /** Without it, the configuration would have these errors (and it is kept). */
  | { readonly ok: false; readonly reason: 'breaks'; readonly findings: readonly Finding[] };

export interface AppliedConfigOptions {
  readonly configDir: string;
  readonly store: ConfigStore;
  readonly domain: string;
  /** Re-reads the config directory; called after every write so a change serves at once. */
  readonly rescan: () => void;
}

const HEADER = `# Applied with \`trellis apply\`; \`trellis delete\` removes it. This definition wins over
# one of the same kind, namespace and name in the other files of this directory.
`;

export class AppliedConfig {
  readonly #options: AppliedConfigOptions;

  constructor(options: AppliedConfigOptions) {
    this.#options = options;
  }

  /**
   * Validates `text` (YAML, one or more documents; `source` names it in findings) against
   * the served configuration, and stores each resource unless something is wrong.
   * Throws TRELLIS_ADMIN_CONFIG_STORAGE when the files cannot be written.
   */
  apply(text: string, source: string, defaultNamespace = 'default'): ApplyOutcome {
    const { store, domain } = this.#options;
    const loaded = loadText(text, source, { defaultNamespace, domain });
    const served = store.snapshot().resources;
    const check = checkApply(loaded, source, served, domain);
    if (check.rejected) return { ok: false, reason: 'invalid', findings: check.findings };
    if (loaded.resources.length === 0) return { ok: false, reason: 'empty', findings: check.findings };
    const documents = new Map(readYaml(text, source).documents.map((d) => [d.position.line, d.value]));
    const servedKeys = new Map(served.map((r) => [keyOf(r), r]));
    const latest = new Map(loaded.resources.map((r) => [keyOf(r), r])); // the last definition of a key wins, as in a file
    const writes: { file: string; content: string }[] = [];
    const resources: AppliedResource[] = [];
    for (const r of latest.values()) {
      const file = appliedFile(r.kind, r.metadata.namespace, r.metadata.name);
      const content = HEADER + stringify(withNamespace(documents.get(r.source.line), r), { indentSeq: false });
      const unchanged = this.#read(file) === content && servedKeys.get(keyOf(r))?.source.file === file;
      if (!unchanged) writes.push({ file, content });
      const result: ApplyResult = unchanged ? 'unchanged' : servedKeys.has(keyOf(r)) ? 'configured' : 'created';
      resources.push({ kind: r.kind, namespace: r.metadata.namespace, name: r.metadata.name, file, result });
    }
    if (writes.length > 0) {
      this.#write(writes);
      this.#options.rescan();
    }
    return { ok: true, resources, findings: check.findings };
  }

  /** Removes an applied resource. Resources from the user's own files are not touched. */
  delete(kind: Kind, namespace: string, name: string): DeleteOutcome {
    const { store } = this.#options;
    const file = appliedFile(kind, namespace, name);
    const key = `${kind}/${namespace}/${name}`;
    const snap = store.snapshot();
    const hidden = snap.overrides.get(key);
    if (existsSync(join(this.#options.configDir, file))) {
      const check = checkDelete(key, snap.resources, hidden, this.#options.domain);
      if (check.rejected) return { ok: false, reason: 'breaks', findings: check.findings };
    }
    try {
      unlinkSync(join(this.#options.configDir, file));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw storageError(`cannot remove ${file}`, err);
      const other = snap.resources.find((r) => keyOf(r) === key);
      return other === undefined ? { ok: false, reason: 'not-found' } : { ok: false, reason: 'not-applied', file: other.source.file, line: other.source.line };
    }
    this.#options.rescan();
    return hidden === undefined ? { ok: true, file } : { ok: true, file, restored: { file: hidden.source.file, line: hidden.source.line } };
  }

  #read(file: string): string | undefined {
    try {
      return readFileSync(join(this.#options.configDir, file), 'utf8');
    } catch {
      return undefined;
    }
  }

  /** Every temporary file first, then the renames: a failed write leaves nothing changed. */
  #write(writes: readonly { file: string; content: string }[]): void {
    const dir = join(this.#options.configDir, APPLIED_DIR);
    const temps: string[] = [];
    try {
      mkdirSync(dir, { recursive: true });
      for (const w of writes) {
        const temp = join(dir, `.${w.file.slice(APPLIED_DIR.length + 1)}.${process.pid}.tmp`);
        temps.push(temp);
        writeDurably(temp, w.content);
      }
    } catch (err) {
      for (const t of temps) rmSync(t, { force: true });
      throw storageError(`cannot write to ${dir}`, err);
    }
    writes.forEach((w, i) => renameSync(temps[i] as string, join(this.#options.configDir, w.file)));
  }
}

/**
 * `applied/<kind>.<namespace>.<name>.yaml` (`<kind>.<name>.yaml` for a kind without
 * namespaces). Kinds have no dots and namespaces are DNS labels, so the name is
 * unambiguous; the caller has checked that the parts are valid names (no `/`, no `..`).
 */
export function appliedFile(kind: Kind, namespace: string, name: string): string {
  const k = kind.toLowerCase();
  return `${APPLIED_DIR}/${namespace === '' ? `${k}.${name}` : `${k}.${namespace}.${name}`}.yaml`;
}

/** Whether a (kind, namespace, name) from a URL names a resource that could exist. */
export function isValidRef(kind: Kind, namespace: string, name: string): boolean {
  const namespaced = KINDS[kind].namespaced;
  return (namespaced ? isDns1123Label(namespace) : namespace === '') && (KINDS[kind].nameIsLabel ? isDns1123Label(name) : isDns1123Subdomain(name));
}

/** The kind spelled case-insensitively (`virtualservice`, `VirtualService`), or undefined. */
export function kindNamed(s: string): Kind | undefined {
  const lower = s.toLowerCase();
  return (Object.keys(KINDS) as Kind[]).find((k) => k.toLowerCase() === lower);
}

/** The document as written, with the namespace it was applied to written out (the store reads it without a default). */
function withNamespace(doc: unknown, r: AnyResource): unknown {
  const value = doc as Record<string, unknown>;
  if (!KINDS[r.kind].namespaced) return value;
  const { name, namespace: _ignored, ...rest } = value.metadata as Record<string, unknown>;
  return { ...value, metadata: { name, namespace: r.metadata.namespace, ...rest } };
}

function writeDurably(path: string, content: string): void {
  const fd = openSync(path, 'w', 0o644);
  try {
    writeSync(fd, content);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function storageError(what: string, err: unknown): TrellisError {
  const reason = err instanceof Error ? err.message : String(err);
  return new TrellisError('TRELLIS_ADMIN_CONFIG_STORAGE', `${what}: ${reason}; check that the configuration directory is writable and the disk is not full`, { cause: err });
}
