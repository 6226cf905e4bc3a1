/**
 * `trellis`: one binary, one subcommand per part (after linkerd2's CLI). This file only
 * picks the command; each command parses its own flags and wires objects.
 *
 * A command's module is imported only when that command runs (or help lists it): the
 * proxy, which runs once per workload, then loads no control-plane, registry or YAML
 * code (about 2 MiB of its memory).
 */
import type { Code } from '../core/codes.js';
import { isTrellisError } from '../core/errors.js';
import { type Command, type CommandIO, HelpRequested } from './command.js';
import { VERSION } from './version.js';

const COMMANDS: Readonly<Record<string, () => Promise<Command>>> = {
  analyze: async () => (await import('./analyze.js')).analyzeCommand,
  'control-plane': async () => (await import('./control-plane.js')).controlPlaneCommand,
  proxy: async () => (await import('./proxy.js')).proxyCommand,
  run: async () => (await import('./run.js')).runCommand,
  up: async () => (await import('./up.js')).upCommand,
  apply: async () => (await import('./apply.js')).applyCommand,
  delete: async () => (await import('./delete.js')).deleteCommand,
  get: async () => (await import('./get.js')).getCommand,
};

async function usage(): Promise<string> {
  const lines = await Promise.all(Object.entries(COMMANDS).map(async ([name, load]) => `  ${name.padEnd(13)} ${(await load()).summary}`));
  return `Usage: trellis <command> [flags]

Commands:
${lines.join('\n')}
  version       Print the version
  help          Print this help, or a command's help: trellis help <command>

Run 'trellis <command> --help' for a command's flags.
`;
}

export async function main(argv: readonly string[], io: CommandIO): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    const topic = name === 'help' && rest[0] !== undefined ? COMMANDS[rest[0]] : undefined;
    io.stdout.write(topic === undefined ? await usage() : (await topic()).usage);
    return 0;
  }
  if (name === 'version' || name === '--version') {
    io.stdout.write(`trellis ${VERSION}\n`);
    return 0;
  }
  const load = COMMANDS[name];
  if (load === undefined) {
    io.stderr.write(`trellis: unknown command "${name}" [TRELLIS_CLI_USAGE]\n\n${await usage()}`);
    return 2;
  }
  const command = await load();
  try {
    return await command.run(rest, io);
  } catch (err) {
    if (err instanceof HelpRequested) {
      io.stdout.write(command.usage);
      return 0;
    }
    if (isTrellisError(err)) {
      io.stderr.write(`trellis ${name}: ${err.message} [${err.code}]\n`);
      return exitStatusOf(err.code);
    }
    throw err;
  }
}

/**
 * Exit status of a command that failed with `code`: 2 for a usage error (as analyze), 3
 * when the control plane cannot be reached (so that a script can wait and retry, and
 * tell that from a rejected change), 1 for everything else.
 */
function exitStatusOf(code: Code): number {
  if (code === 'TRELLIS_CLI_USAGE') return 2;
  if (code === 'TRELLIS_CLI_CONTROL_PLANE_UNREACHABLE') return 3;
  return 1;
}
