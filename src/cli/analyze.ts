/**
 * `trellis analyze <file|dir>...`: validates every resource, then checks the set as a
 * whole, like `istioctl analyze`. Exit status 0 when no finding reaches the failure
 * threshold (error by default), 1 when one does, 2 for a usage error.
 */
import { readFileSync } from 'node:fs';
import { analyze } from '../api/analyze/index.js';
import { loadPaths } from '../api/files.js';
import { type Finding, formatResourceRef } from '../api/finding.js';
import { SEVERITIES, type Severity } from '../core/codes.js';
import { TrellisError } from '../core/errors.js';
import { type Command, parseFlags } from './command.js';

const USAGE = `Usage: trellis analyze [flags] <file|dir>...

Validates Istio configuration (VirtualService, DestinationRule, Gateway, ServiceEntry,
WorkloadEntry, Sidecar, PeerAuthentication, AuthorizationPolicy, RequestAuthentication,
and Kubernetes Service and Namespace) and checks the set as a whole. Directories are
read recursively (*.yaml, *.yml).

Flags:
  -o, --output text|json        Output format (default text)
  -n, --namespace NAME          Namespace of resources that name none (default "default")
      --failure-threshold LEVEL error|warning|info: lowest severity that fails (default error)
  -h, --help                    Show this help

Exit status: 0 no finding at or above the threshold, 1 some, 2 usage error.
`;

const RANK: Readonly<Record<Severity, number>> = { error: 0, warning: 1, info: 2 };

export const analyzeCommand: Command = {
  summary: 'Validate Istio configuration files and check them as a set',
  usage: USAGE,
  async run(args, io) {
    const { values, positionals } = parseFlags(args, {
      output: { type: 'string', short: 'o', default: 'text' },
      namespace: { type: 'string', short: 'n', default: 'default' },
      'failure-threshold': { type: 'string', default: 'error' },
    }, USAGE);
    const output = values.output;
    if (output !== 'text' && output !== 'json') throw new TrellisError('TRELLIS_CLI_USAGE', `--output must be text or json (got "${output}")`);
    const threshold = values['failure-threshold'] as string;
    if (!(SEVERITIES as readonly string[]).includes(threshold)) {
      throw new TrellisError('TRELLIS_CLI_USAGE', `--failure-threshold must be error, warning or info (got "${threshold}")`);
    }
    if (positionals.length === 0) throw new TrellisError('TRELLIS_CLI_USAGE', `no files or directories given\n\n${USAGE}`);
    const loaded = loadPaths(positionals, { defaultNamespace: values.namespace as string });
    const findings = analyze(loaded, { readFile: (path) => readFileSync(path, 'utf8') });
    const counts = { error: 0, warning: 0, info: 0 };
    for (const f of findings) counts[f.severity]++;
    const files = new Set([...loaded.resources.map((r) => r.source.file), ...findings.map((f) => f.file)]).size;
    const summary = { ...counts, resources: loaded.resources.length, files };
    io.stdout.write(output === 'json' ? JSON.stringify({ findings: findings.map(toJson), summary }, null, 2) + '\n' : formatText(findings, summary));
    const failing = findings.some((f) => RANK[f.severity] <= RANK[threshold as Severity]);
    return failing ? 1 : 0;
  },
};

function toJson(f: Finding): Record<string, unknown> {
  return {
    code: f.code,
    severity: f.severity,
    message: f.message,
    resource: f.resource === undefined ? null : f.resource,
    file: f.file ?? null,
    line: f.line ?? null,
    column: f.column ?? null,
    path: f.path ?? null,
  };
}

/** `vs.yaml:14: error TRELLIS_X VirtualService default/reviews: spec.http[0]...: message` */
export function formatFindingLine(f: Finding): string {
  const where = f.file === undefined ? '' : f.line === undefined ? `${f.file}: ` : `${f.file}:${f.line}: `;
  const what = f.resource === undefined ? '' : ` ${formatResourceRef(f.resource)}`;
  const path = f.path === undefined || f.path === '' ? '' : `${f.path}: `;
  return `${where}${f.severity} ${f.code}${what}: ${path}${f.message}`;
}

function formatText(findings: readonly Finding[], s: { error: number; warning: number; info: number; resources: number; files: number }): string {
  const lines = findings.map(formatFindingLine);
  const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;
  lines.push(
    findings.length === 0
      ? `No problems found in ${plural(s.resources, 'resource')} (${plural(s.files, 'file')}).`
      : `${plural(s.error, 'error')}, ${plural(s.warning, 'warning')}, ${s.info} info in ${plural(s.resources, 'resource')} (${plural(s.files, 'file')}).`,
  );
  return lines.join('\n') + '\n';
}
