/**
 * `trellis apply -f <file|dir>...`: validates configuration here first (as `analyze`
 * validates each resource), then sends it, all files as one change, to the running
 * control plane, which checks it against the configuration it serves and stores it.
 * Nothing changes when anything is wrong.
 */
import { readFileSync } from 'node:fs';
import { relative, sep } from 'node:path';
import { listConfigFiles } from '../api/files.js';
import type { Finding } from '../api/finding.js';
import { loadText } from '../api/load.js';
import { isDns1123Label } from '../api/common.js';
import { TrellisError } from '../core/errors.js';
import { formatFindingLine } from './analyze.js';
import { type Command, type CommandIO, parseFlags } from './command.js';
import { CONTROL_PLANE_FLAG, CONTROL_PLANE_USAGE, ControlPlaneClient, answerError, controlPlaneUrl, errorOf } from './control-plane-client.js';
import { type Bundle, type BundledFile, bundle } from './yaml-bundle.js';

const USAGE = `Usage: trellis apply -f <file|dir> [-f <file|dir>...] [flags]

Applies Istio configuration to the running mesh: each resource is validated here, then
checked by the control plane against the configuration it serves (the checks of
trellis analyze), and stored, so that it survives a restart of the mesh. Proxies get the
change within a second. Nothing is applied when anything is wrong. Directories are read
recursively (*.yaml, *.yml); a resource applied again replaces the earlier version.

Flags:
  -f, --filename PATH          File or directory to apply (repeatable; required)
  -n, --namespace NAME         Namespace of resources that name none (default "default")
${CONTROL_PLANE_USAGE}
  -h, --help                   Show this help

Exit status: 0 applied, 1 not applied (errors in the configuration, unreadable file,
control plane error), 2 usage error, 3 control plane not reachable.
`;

export const applyCommand: Command = {
  summary: 'Apply configuration files to the running mesh',
  usage: USAGE,
  async run(args, io) {
    const { values, positionals } = parseFlags(args, FILE_FLAGS, USAGE);
    const { paths, namespace, client } = fileArguments(values, positionals, 'name the files to apply with -f', USAGE);
    const files = readFiles(paths, io.cwd);

    const local = files.map((f) => loadText(f.text, f.name, { defaultNamespace: namespace }));
    const findings = local.flatMap((r) => r.findings);
    const errors = findings.filter((f) => f.severity === 'error').length;
    if (errors > 0) {
      printFindings(io, findings);
      io.stderr.write(`${plural(errors, 'error')} in ${plural(files.length, 'file')}: nothing was applied.\n`);
      return 1;
    }
    if (local.every((r) => r.resources.length === 0)) {
      printFindings(io, findings);
      throw new TrellisError('TRELLIS_CLI_NO_RESOURCES', `no resource the mesh reads in ${paths.join(', ')}; nothing was applied`);
    }

    const b = bundle(files);
    const source = files.length === 1 ? (files[0] as BundledFile).name : `${files.length} files`;
    const answer = await client.request('PUT', `/v1/config?${new URLSearchParams({ namespace, source })}`, {
      body: b.text,
      headers: { 'content-type': 'application/yaml' },
    });
    const remote = findingsOf(answer.body, source, b);
    printFindings(io, remote);
    if (answer.status === 400 && errorOf(answer)?.code === 'TRELLIS_ADMIN_CONFIG_INVALID') {
      const n = remote.filter((f) => f.severity === 'error').length;
      io.stderr.write(`The control plane rejected the configuration (${plural(n, 'error')}): nothing was applied.\n`);
      return 1;
    }
    if (answer.status !== 200) throw answerError(answer);
    for (const r of (answer.body.resources ?? []) as { kind: string; name: string; result: string }[]) {
      io.stdout.write(`${r.kind.toLowerCase()}/${r.name} ${r.result}\n`);
    }
    return 0;
  },
};

/** Every YAML file the paths name, with the name a user knows it by. */
function readFiles(paths: readonly string[], cwd: string): BundledFile[] {
  return listConfigFiles(paths).map((file) => {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new TrellisError('TRELLIS_CLI_PATH_NOT_FOUND', `cannot read "${file}": ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    const rel = relative(cwd, file);
    return { name: rel.startsWith('..') || rel === '' ? file : rel.split(sep).join('/'), text };
  });
}

/**
 * The findings of an answer (null fields left out); with a bundle, those in the bundle
 * `source` the request sent have their lines mapped back to the files.
 */
export function findingsOf(body: Record<string, unknown>, source?: string, b?: Bundle): Finding[] {
  const list = (body.findings ?? (body.error as { findings?: unknown } | undefined)?.findings ?? []) as Record<string, unknown>[];
  return list.map((raw) => {
    const f: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(raw)) if (v !== null) f[k] = v;
    const at = b !== undefined && f.file === source && typeof f.line === 'number' ? b.locate(f.line) : undefined;
    return (at === undefined ? f : { ...f, file: at.file, line: at.line }) as unknown as Finding;
  });
}

/** The flags of the commands that take files (`apply`, `delete`). */
export const FILE_FLAGS = {
  filename: { type: 'string', short: 'f', multiple: true },
  namespace: { type: 'string', short: 'n', default: 'default' },
  ...CONTROL_PLANE_FLAG,
} as const;

/** FILE_FLAGS' values checked: the files (at least one, no positionals), the namespace, a client for the control plane. */
export function fileArguments(
  values: { filename?: string[]; namespace?: string | boolean; 'control-plane'?: string | boolean },
  positionals: readonly string[],
  missing: string,
  usage: string,
): { paths: string[]; namespace: string; client: ControlPlaneClient } {
  const paths = values.filename ?? [];
  if (paths.length === 0 || positionals.length > 0) throw new TrellisError('TRELLIS_CLI_USAGE', `${missing}\n\n${usage}`);
  const namespace = values.namespace as string;
  if (!isDns1123Label(namespace)) throw new TrellisError('TRELLIS_CLI_USAGE', `--namespace must be a DNS-1123 label (got "${namespace}")`);
  return { paths, namespace, client: new ControlPlaneClient(controlPlaneUrl(values['control-plane'] as string | undefined)) };
}

/** Findings go to stderr: stdout is for what was applied. */
export function printFindings(io: CommandIO, findings: readonly Finding[]): void {
  for (const f of findings) io.stderr.write(`${formatFindingLine(f)}\n`);
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}
