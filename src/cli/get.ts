/**
 * `trellis get KIND [NAME]`: the configuration the running mesh serves — applied
 * resources and those from the control plane's configuration files — like `kubectl get`.
 */
import { KINDS, type Kind } from '../api/kinds.js';
import { TrellisError } from '../core/errors.js';
import { type Command, parseFlags } from './command.js';
import { CONTROL_PLANE_FLAG, CONTROL_PLANE_USAGE, ControlPlaneClient, answerError, controlPlaneUrl, refPath } from './control-plane-client.js';
import { type ConfigEntry, formatJson, formatTable, formatYaml } from './get-output.js';
import { kindList, kindOf } from './kind-names.js';

const USAGE = `Usage: trellis get <kind|all> [name] [flags]

Lists the configuration the running mesh serves: what trellis apply applied and what
the control plane's configuration files define (the SOURCE column says which).

Kinds: ${kindList()};
singular, plural or short, any case. "all" lists every kind.

Flags:
  -n, --namespace NAME         Namespace (default "default")
  -A, --all-namespaces         Every namespace
  -o, --output FORMAT          table, yaml or json (default table); yaml can be applied again
${CONTROL_PLANE_USAGE}
  -h, --help                   Show this help

Exit status: 0 listed (also when nothing matches a kind), 1 a named resource does not
exist or the control plane failed, 2 usage error, 3 control plane not reachable.
`;

const OUTPUTS = ['table', 'yaml', 'json'] as const;

export const getCommand: Command = {
  summary: 'List the configuration the running mesh serves',
  usage: USAGE,
  async run(args, io) {
    const { values, positionals } = parseFlags(args, {
      namespace: { type: 'string', short: 'n', default: 'default' },
      'all-namespaces': { type: 'boolean', short: 'A', default: false },
      output: { type: 'string', short: 'o', default: 'table' },
      ...CONTROL_PLANE_FLAG,
    }, USAGE);
    const output = values.output as string;
    if (!(OUTPUTS as readonly string[]).includes(output)) throw new TrellisError('TRELLIS_CLI_USAGE', `--output must be table, yaml or json (got "${output}")`);
    const [word, name, ...extra] = positionals;
    if (word === undefined || extra.length > 0) throw new TrellisError('TRELLIS_CLI_USAGE', `name one kind, and at most one resource\n\n${USAGE}`);
    const kind = word.toLowerCase() === 'all' ? undefined : kindOf(word);
    if (kind === undefined && word.toLowerCase() !== 'all') throw new TrellisError('TRELLIS_CLI_USAGE', `unknown kind "${word}"; kinds are ${kindList()}, or all`);
    const all = values['all-namespaces'] === true;
    if (name !== undefined && (kind === undefined || all)) throw new TrellisError('TRELLIS_CLI_USAGE', 'a resource is named within one kind and one namespace (no "all", no -A)');
    const namespace = values.namespace as string;
    const client = new ControlPlaneClient(controlPlaneUrl(values['control-plane']));

    let entries: ConfigEntry[];
    if (name !== undefined && kind !== undefined) {
      const answer = await client.request('GET', refPath({ kind, namespace, name }));
      if (answer.status !== 200) throw answerError(answer);
      entries = [answer.body as unknown as ConfigEntry];
    } else {
      // A kind without namespaces (Namespace) is listed whatever -n says, as kubectl does.
      const scoped = kind !== undefined && !KINDS[kind].namespaced;
      entries = await list(client, kind, all ? null : scoped ? '' : namespace);
      if (!all && kind === undefined) entries = [...entries, ...(await list(client, undefined, ''))].sort(byKind);
    }
    if (entries.length === 0) {
      io.stderr.write(all ? 'No resources found.\n' : `No resources found in ${namespace} namespace.\n`);
      return 0;
    }
    if (output === 'yaml') io.stdout.write(formatYaml(entries));
    else if (output === 'json') io.stdout.write(formatJson(entries, name !== undefined));
    else io.stdout.write(formatTable(entries, { kind, allNamespaces: all }));
    return 0;
  },
};

async function list(client: ControlPlaneClient, kind: Kind | undefined, namespace: string | null): Promise<ConfigEntry[]> {
  const query = new URLSearchParams(kind === undefined ? {} : { kind });
  if (namespace !== null) query.set('namespace', namespace);
  const answer = await client.request('GET', `/v1/config?${query}`);
  if (answer.status !== 200) throw answerError(answer);
  return (answer.body.resources ?? []) as ConfigEntry[];
}

function byKind(a: ConfigEntry, b: ConfigEntry): number {
  return a.kind < b.kind ? -1 : a.kind > b.kind ? 1 : 0; // stable: each kind keeps the server's namespace/name order
}
