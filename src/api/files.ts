/**
 * Reading configuration from files and directories. Directories are walked recursively
 * for `.yaml`/`.yml` files, in a stable (sorted) order, so that results and findings do
 * not depend on the file system's listing order.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { TrellisError } from '../core/errors.js';
import type { Finding } from './finding.js';
import { type LoadOptions, type LoadResult, loadText } from './load.js';
import type { AnyResource, DeclaredWorkload } from './resource.js';

const YAML_FILE = /\.ya?ml$/i;

/** Expands files and directories into the YAML files they name, sorted. Throws for a missing path. */
export function listConfigFiles(paths: readonly string[]): string[] {
  const out: string[] = [];
  for (const p of paths) {
    let stat;
    try {
      stat = statSync(p);
    } catch (err) {
      throw new TrellisError('TRELLIS_CLI_PATH_NOT_FOUND', `cannot read "${p}": no such file or directory`, { cause: err });
    }
    if (stat.isDirectory()) out.push(...walk(p));
    else out.push(p);
  }
  return out;
}

function walk(dir: string): string[] {
  const entries = readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const out: string[] = [];
  for (const e of entries) {
    if (e.name.startsWith('.')) continue;
    const full = join(dir, e.name);
    if (e.isDirectory()) out.push(...walk(full));
    else if (e.isFile() && YAML_FILE.test(e.name)) out.push(full);
  }
  return out;
}

/** Loads every YAML file under `paths`. File names in findings are as given (relative stays relative). */
export function loadPaths(paths: readonly string[], options: LoadOptions = {}): LoadResult {
  const resources: AnyResource[] = [];
  const workloads: DeclaredWorkload[] = [];
  const findings: Finding[] = [];
  for (const file of listConfigFiles(paths)) {
    const result = loadText(readFileSync(file, 'utf8'), displayName(file), options);
    resources.push(...result.resources);
    workloads.push(...result.workloads);
    findings.push(...result.findings);
  }
  return { resources, workloads, findings };
}

function displayName(file: string): string {
  const rel = relative(process.cwd(), file);
  return rel.startsWith('..') || rel === '' ? file : rel.split(sep).join('/');
}
