/**
 * `trellis delete -f <file|dir>...`: removes from the running mesh the applied resources
 * that the files name (kind, namespace, name — the rest of each document is not read,
 * as with `kubectl delete -f`). Resources that come from the control plane's own
 * configuration files are not applied ones, and are refused with the file to edit.
 */
import { readFileSync } from 'node:fs';
import { isPlainObject } from '../api/schema/schema.js';
import { listConfigFiles } from '../api/files.js';
import type { Finding } from '../api/finding.js';
import { KINDS, isKind } from '../api/kinds.js';
import { readYaml } from '../api/yaml-source.js';
import { TrellisError } from '../core/errors.js';
import { fileArguments, FILE_FLAGS, findingsOf, printFindings } from './apply.js';
import { type Command, parseFlags } from './command.js';
import { CONTROL_PLANE_USAGE, type ResourceRef, answerError, errorOf, refPath } from './control-plane-client.js';

const USAGE = `Usage: trellis delete -f <file|dir> [-f <file|dir>...] [flags]

Deletes from the running mesh the resources that the files name (by kind, namespace
and name), as trellis apply applied them. Resources defined in the control plane's own
configuration files are not deleted: edit those files instead.

Flags:
  -f, --filename PATH          File or directory naming the resources (repeatable; required)
  -n, --namespace NAME         Namespace of resources that name none (default "default")
      --ignore-not-found       A resource that does not exist is not an error
${CONTROL_PLANE_USAGE}
  -h, --help                   Show this help

Exit status: 0 all deleted, 1 some not deleted (not found, not applied, needed by the
rest of the configuration, control plane error, unreadable file), 2 usage error, 3 control plane not reachable.
`;

export const deleteCommand: Command = {
  summary: 'Delete applied configuration from the running mesh',
  usage: USAGE,
  async run(args, io) {
    const { values, positionals } = parseFlags(args, {
      ...FILE_FLAGS,
      'ignore-not-found': { type: 'boolean', default: false },
    }, USAGE);
    const { paths, namespace, client } = fileArguments(values, positionals, 'name the files with -f', USAGE);
    const { refs, findings } = refsIn(paths, namespace);
    if (findings.length > 0) {
      printFindings(io, findings);
      io.stderr.write('Nothing was deleted.\n');
      return 1;
    }
    if (refs.length === 0) throw new TrellisError('TRELLIS_CLI_NO_RESOURCES', `no resource the mesh reads in ${paths.join(', ')}; nothing was deleted`);
    let failed = 0;
    // Routes before what they refer to: deleting a VirtualService and the DestinationRule
    // whose subsets it uses, in either order on the command line, is then not refused.
    for (const r of [...refs].sort((a, b) => deleteRank(a.kind) - deleteRank(b.kind))) {
      const answer = await client.request('DELETE', refPath(r));
      const code = errorOf(answer)?.code;
      if (answer.status === 200) {
        const restored = answer.body.restored as { file: string; line: number } | null;
        io.stdout.write(`${r.kind.toLowerCase()}/${r.name} deleted${restored === null ? '' : ` (the definition in ${restored.file}:${restored.line} serves again)`}\n`);
      } else if (code === 'TRELLIS_ADMIN_CONFIG_NOT_FOUND' && values['ignore-not-found'] === true) {
        continue;
      } else if (code === 'TRELLIS_ADMIN_CONFIG_DELETE_BREAKS') {
        io.stderr.write(`trellis delete: ${errorOf(answer)?.message} [${code}]\n`);
        printFindings(io, findingsOf(answer.body));
        failed++;
      } else if (code === 'TRELLIS_ADMIN_CONFIG_NOT_FOUND' || code === 'TRELLIS_ADMIN_CONFIG_NOT_APPLIED') {
        io.stderr.write(`trellis delete: ${errorOf(answer)?.message} [${code}]\n`);
        failed++;
      } else {
        throw answerError(answer);
      }
    }
    return failed === 0 ? 0 : 1;
  },
};

function deleteRank(kind: string): number {
  return kind === 'VirtualService' ? 0 : 1;
}

/** The mesh resources the files name; documents of other kinds are passed over, as nothing applied them. */
function refsIn(paths: readonly string[], defaultNamespace: string): { refs: ResourceRef[]; findings: Finding[] } {
  const refs: ResourceRef[] = [];
  const findings: Finding[] = [];
  for (const file of listConfigFiles(paths)) {
    const yaml = readYaml(readText(file), file);
    findings.push(...yaml.findings);
    for (const doc of yaml.documents) {
      const v = doc.value;
      if (!isPlainObject(v) || typeof v.kind !== 'string' || typeof v.apiVersion !== 'string' || !isPlainObject(v.metadata)) continue;
      const group = v.apiVersion.includes('/') ? v.apiVersion.slice(0, v.apiVersion.lastIndexOf('/')) : '';
      if (!isKind(v.kind) || KINDS[v.kind].group !== group) continue; // e.g. a Knative Service
      const { name, namespace } = v.metadata;
      if (typeof name !== 'string' || name === '') continue;
      const ns = !KINDS[v.kind].namespaced ? '' : typeof namespace === 'string' && namespace !== '' ? namespace : defaultNamespace;
      refs.push({ kind: v.kind, namespace: ns, name });
    }
  }
  return { refs, findings };
}

function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new TrellisError('TRELLIS_CLI_PATH_NOT_FOUND', `cannot read "${file}": ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}
