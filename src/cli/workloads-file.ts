/**
 * The local mesh's workload declaration, `workloads.yaml` in the mesh directory: which
 * applications `trellis up` runs, each with its sidecar, as a Procfile or a compose file
 * would say it:
 *
 *   open: /productpage            # optional: the path printed after the gateway URL
 *   workloads:
 *   - name: reviews-v2            # required; also the default app label
 *     namespace: default          # default "default"
 *     serviceAccount: bookinfo-reviews   # default: the name
 *     labels: {app: reviews, version: v2}  # default {app: <name>}
 *     command: [node, '${TRELLIS_HOME}/dist/examples/bookinfo/src/reviews.js']  # required; run in the directory
 *     env: {STAR_COLOR: black}     # optional
 *     replicas: 1                  # default 1
 *
 * `${NAME}` in `command` and `env` is replaced by the variable's value, as compose files
 * do: `TRELLIS_HOME` (where Trellis is installed) or any variable of `trellis up`'s
 * environment. A mesh directory's commands then do not depend on where the directory
 * is: a copied example still finds the programs Trellis built.
 *
 * Each replica gets a free port on 127.0.0.1 in `PORT` (the application must listen
 * there) and a mesh address of its own (see `trellis run`). Errors name the file, the
 * line and the field.
 */
import { readFileSync } from 'node:fs';
import { LineCounter, parseDocument, isMap, isSeq, type Node as YamlNode } from 'yaml';
import { TrellisError } from '../core/errors.js';

export const WORKLOADS_FILE = 'workloads.yaml';

export interface WorkloadDeclaration {
  readonly name: string;
  readonly namespace: string;
  readonly serviceAccount: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly command: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly replicas: number;
}

export interface MeshDeclaration {
  readonly open: string;
  readonly workloads: readonly WorkloadDeclaration[];
}

const NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const VARIABLE = /\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

/** Values for `${NAME}` in `command` and `env`; an unset one is an error. */
export type WorkloadVariables = Readonly<Record<string, string | undefined>>;

/**
 * Reads and checks `file`, replacing `${NAME}` in commands and environment values by
 * `vars[NAME]`; throws TRELLIS_UP_INVALID_WORKLOADS with file:line and field path.
 */
export function readWorkloads(file: string, vars: WorkloadVariables = {}): MeshDeclaration {
  const text = readFileSync(file, 'utf8');
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines });
  const fail = (node: YamlNode | null | undefined, path: string, message: string): never => {
    const line = node?.range == null ? 1 : lines.linePos(node.range[0]).line;
    throw new TrellisError('TRELLIS_UP_INVALID_WORKLOADS', `${file}:${line}: ${path}: ${message}`);
  };
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    throw new TrellisError('TRELLIS_UP_INVALID_WORKLOADS', `${file}:${e?.linePos?.[0]?.line ?? 1}: ${e?.message ?? 'invalid YAML'}`);
  }
  const root = doc.contents;
  if (!isMap(root)) return fail(root, '(top)', 'expected a mapping with "workloads"');
  const openNode = root.get('open', true) as YamlNode | undefined;
  const open = doc.get('open');
  if (open !== undefined && (typeof open !== 'string' || !open.startsWith('/'))) fail(openNode, 'open', 'expected a path starting with "/"');
  const list = root.get('workloads', true);
  if (!isSeq(list)) return fail(list as YamlNode | undefined ?? root, 'workloads', 'expected a list of workloads');
  const seen = new Set<string>();
  const workloads = list.items.map((item, i): WorkloadDeclaration => {
    const path = `workloads[${i}]`;
    if (!isMap(item)) return fail(item as YamlNode, path, 'expected a mapping');
    const known = new Set(['name', 'namespace', 'serviceAccount', 'labels', 'command', 'env', 'replicas']);
    for (const pair of item.items) {
      const key = String((pair.key as { value?: unknown } | null)?.value);
      if (!known.has(key)) fail(pair.key as YamlNode, `${path}.${key}`, `unknown field (fields: ${[...known].join(', ')})`);
    }
    const value = item.toJSON() as Record<string, unknown>;
    const at = (k: string): YamlNode | undefined => item.get(k, true) as YamlNode | undefined;
    const name = value.name;
    if (typeof name !== 'string' || !NAME.test(name)) return fail(at('name') ?? item, `${path}.name`, 'required: a lower-case DNS label such as reviews-v1');
    if (seen.has(name)) fail(at('name'), `${path}.name`, `"${name}" is declared twice`);
    seen.add(name);
    const namespace = value.namespace ?? 'default';
    if (typeof namespace !== 'string' || !NAME.test(namespace)) fail(at('namespace'), `${path}.namespace`, 'expected a lower-case DNS label');
    const serviceAccount = value.serviceAccount ?? name;
    if (typeof serviceAccount !== 'string' || serviceAccount === '') fail(at('serviceAccount'), `${path}.serviceAccount`, 'expected a string');
    const labels = stringMap(value.labels ?? { app: name }, () => fail(at('labels'), `${path}.labels`, 'expected a mapping of strings'));
    const command = value.command;
    if (!Array.isArray(command) || command.length === 0 || !command.every((c) => typeof c === 'string' || typeof c === 'number')) {
      return fail(at('command') ?? item, `${path}.command`, 'required: the program and its arguments, as a list');
    }
    const env = stringMap(value.env ?? {}, () => fail(at('env'), `${path}.env`, 'expected a mapping of strings'));
    const expand = (s: string, field: string): string => s.replace(VARIABLE, (_, v: string) => vars[v] ?? fail(at(field), `${path}.${field}`, `\${${v}} is not set (TRELLIS_HOME or a variable of trellis up's environment)`));
    const replicas = value.replicas ?? 1;
    if (typeof replicas !== 'number' || !Number.isInteger(replicas) || replicas < 0 || replicas > 20) fail(at('replicas'), `${path}.replicas`, 'expected a whole number from 0 to 20');
    const expanded = command.map((c) => expand(String(c), 'command'));
    for (const k of Object.keys(env)) env[k] = expand(env[k] as string, 'env');
    return { name, namespace: namespace as string, serviceAccount: serviceAccount as string, labels, command: expanded, env, replicas: replicas as number };
  });
  return { open: (open as string | undefined) ?? '/', workloads };
}

function stringMap(v: unknown, fail: () => never): Record<string, string> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return fail();
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(v)) {
    if (typeof x !== 'string' && typeof x !== 'number' && typeof x !== 'boolean') return fail();
    out[k] = String(x);
  }
  return out;
}
