/**
 * The configuration store: every YAML file under a directory, validated, with the last
 * good version of each resource kept serving when a file turns bad (STYLE 10).
 *
 * Policy when a file changes:
 * - a file with a YAML syntax error keeps its previous resources entirely (we cannot tell
 *   which documents the user meant to change);
 * - otherwise each valid document replaces its resource, and an invalid document keeps
 *   the previous version of the resource it names (kind, namespace, name), if any;
 * - a removed file removes its resources.
 * When two files define the same resource, the one later in path order wins, and the
 * store reports the duplicate. Files under `applied/` (written by `trellis apply` through
 * the admin API) come after all others: applying a resource replaces the user's own
 * definition, as `kubectl apply` replaces what is in the cluster, and that is recorded as
 * an override rather than reported as a duplicate.
 */
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { relative, sep } from 'node:path';
import { listConfigFiles } from '../api/files.js';
import { type Finding, finding } from '../api/finding.js';
import { loadText, type LoadOptions } from '../api/load.js';
import { type AnyResource, keyOf, refOf } from '../api/resource.js';
import { readYaml, type YamlDocument } from '../api/yaml-source.js';

/** The folder of the config directory that the admin API's `PUT /v1/config` writes. */
export const APPLIED_DIR = 'applied';

export interface FileStatus {
  /** Path relative to the config directory, with `/`. */
  readonly file: string;
  /** True when every document of the current content is valid. */
  readonly valid: boolean;
  readonly findings: readonly Finding[];
  /** Keys (`Kind/namespace/name`) of resources served from an earlier, valid version. */
  readonly servingPrevious: readonly string[];
}

export interface StoreSnapshot {
  /** Increases on every change of the served resources. */
  readonly version: number;
  readonly resources: readonly AnyResource[];
  readonly files: readonly FileStatus[];
  /** Findings about the set (duplicates across files). */
  readonly findings: readonly Finding[];
  /** Keys of applied resources that hide a definition in the user's own files, with that definition. */
  readonly overrides: ReadonlyMap<string, AnyResource>;
}

interface FileState {
  readonly hash: string;
  readonly mtimeMs: number;
  readonly size: number;
  readonly resources: readonly AnyResource[];
  readonly status: FileStatus;
}

export class ConfigStore {
  readonly #dir: string;
  readonly #options: LoadOptions;
  readonly #files = new Map<string, FileState>();
  readonly #listeners = new Set<() => void>();
  /**
   * The text each resource was loaded from, so its YAML can be shown as written (the
   * resource itself is in domain form: hosts resolved, durations in ms). A resource
   * carried over from an earlier version of its file keeps that version's text.
   */
  readonly #texts = new WeakMap<AnyResource, string>();
  #snapshot: StoreSnapshot = { version: 0, resources: [], files: [], findings: [], overrides: new Map() };

  constructor(dir: string, options: LoadOptions = {}) {
    this.#dir = dir;
    this.#options = options;
  }

  snapshot(): StoreSnapshot {
    return this.#snapshot;
  }

  /**
   * The YAML document a served resource was loaded from, as plain data (`apiVersion`,
   * `kind`, `metadata`, `spec` as the user wrote them), or undefined for a resource this
   * store did not load. Parses the file's text again: pass the same `parsed` map for a
   * run of resources so that each file is parsed once.
   */
  documentOf(resource: AnyResource, parsed: Map<string, readonly YamlDocument[]> = new Map()): Record<string, unknown> | undefined {
    const text = this.#texts.get(resource);
    if (text === undefined) return undefined;
    let documents = parsed.get(text);
    if (documents === undefined) {
      documents = readYaml(text, resource.source.file).documents;
      parsed.set(text, documents);
    }
    const doc = documents.find((d) => d.position.line === resource.source.line);
    const value = doc?.value;
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  }

  /** Calls `onChange` after every rescan that changed the served resources or statuses. */
  subscribe(onChange: () => void): () => void {
    this.#listeners.add(onChange);
    return () => this.#listeners.delete(onChange);
  }

  /**
   * Reads the directory again: new, changed and removed files. Cheap when nothing changed
   * (a stat per file). Returns whether anything changed.
   */
  rescan(): boolean {
    const paths = listConfigFiles([this.#dir]);
    const seen = new Set<string>();
    let changed = false;
    for (const path of paths) {
      const name = relative(this.#dir, path).split(sep).join('/');
      seen.add(name);
      const stat = statSafe(path);
      if (stat === undefined) continue; // removed between listing and stat: next scan
      const prev = this.#files.get(name);
      if (prev !== undefined && prev.mtimeMs === stat.mtimeMs && prev.size === stat.size) continue;
      const text = readSafe(path);
      if (text === undefined) continue;
      const hash = createHash('sha256').update(text).digest('hex');
      if (prev !== undefined && prev.hash === hash) {
        this.#files.set(name, { ...prev, mtimeMs: stat.mtimeMs, size: stat.size });
        continue;
      }
      this.#files.set(name, this.#loadFile(name, text, hash, stat, prev));
      changed = true;
    }
    for (const name of [...this.#files.keys()]) {
      if (!seen.has(name)) {
        this.#files.delete(name);
        changed = true;
      }
    }
    if (changed) this.#publish();
    return changed;
  }

  #loadFile(name: string, text: string, hash: string, stat: { mtimeMs: number; size: number }, prev: FileState | undefined): FileState {
    const result = loadText(text, name, this.#options);
    const errors = result.findings.filter((f) => f.severity === 'error');
    const previous = new Map((prev?.resources ?? []).map((r) => [keyOf(r), r]));
    for (const r of result.resources) this.#texts.set(r, text);
    let resources: AnyResource[] = [...result.resources];
    const servingPrevious: string[] = [];
    if (errors.some((f) => f.code === 'TRELLIS_CONFIG_YAML_SYNTAX')) {
      resources = [...previous.values()];
      servingPrevious.push(...previous.keys());
    } else {
      const loaded = new Set(resources.map(keyOf));
      for (const f of errors) {
        if (f.resource === undefined) continue;
        const key = `${f.resource.kind}/${f.resource.namespace}/${f.resource.name}`;
        const old = previous.get(key);
        if (old === undefined || loaded.has(key)) continue;
        loaded.add(key);
        resources.push(old);
        servingPrevious.push(key);
      }
    }
    const status: FileStatus = { file: name, valid: errors.length === 0, findings: result.findings, servingPrevious };
    return { hash, mtimeMs: stat.mtimeMs, size: stat.size, resources, status };
  }

  #publish(): void {
    const names = [...this.#files.keys()].sort(byPrecedence);
    const byKey = new Map<string, AnyResource>();
    const findings: Finding[] = [];
    const overrides = new Map<string, AnyResource>();
    for (const name of names) {
      for (const r of (this.#files.get(name) as FileState).resources) {
        const key = keyOf(r);
        const other = byKey.get(key);
        if (other !== undefined && isApplied(name) && !isApplied(other.source.file)) {
          overrides.set(key, other);
          byKey.delete(key);
        } else if (other !== undefined) {
          findings.push(finding('TRELLIS_ANALYZE_DUPLICATE_RESOURCE',
            `${key} is also defined in ${other.source.file}; the definition in ${r.source.file} is served`,
            { file: r.source.file, line: r.source.line, resource: refOf(r) }));
          byKey.delete(key); // re-insert so the served order follows the winning file
        }
        byKey.set(key, r);
      }
    }
    this.#snapshot = {
      version: this.#snapshot.version + 1,
      resources: [...byKey.values()],
      files: names.map((n) => (this.#files.get(n) as FileState).status),
      findings,
      overrides,
    };
    for (const listener of [...this.#listeners]) listener();
  }
}

/** True for a file (relative to the config directory) that `trellis apply` wrote. */
export function isApplied(file: string): boolean {
  return file.startsWith(`${APPLIED_DIR}/`);
}

/** Path order, except that applied files come last (so they win). */
function byPrecedence(a: string, b: string): number {
  return Number(isApplied(a)) - Number(isApplied(b)) || (a < b ? -1 : a > b ? 1 : 0);
}

function statSafe(path: string): { mtimeMs: number; size: number } | undefined {
  try {
    const s = statSync(path);
    return { mtimeMs: s.mtimeMs, size: s.size };
  } catch {
    return undefined;
  }
}

function readSafe(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}
