/**
 * `trellis`: one binary, one subcommand per part (after linkerd2's CLI). This file only
 * picks the command; each command parses its own flags and wires objects.
 */
import { isTrellisError } from '../core/errors.js';
import { analyzeCommand } from './analyze.js';
import { controlPlaneCommand } from './control-plane.js';
import { proxyCommand } from './proxy.js';
import type { Command, CommandIO } from './command.js';
import { VERSION } from './version.js';

const COMMANDS: Readonly<Record<string, Command>> = {
  analyze: analyzeCommand,
  'control-plane': controlPlaneCommand,
  proxy: proxyCommand,
};

const USAGE = `Usage: trellis <command> [flags]

Commands:
${Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(12)} ${c.summary}`).join('\n')}
  version      Print the version
  help         Print this help, or a command's help: trellis help <command>

Run 'trellis <command> --help' for a command's flags.
`;

export async function main(argv: readonly string[], io: CommandIO): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    const topic = name === 'help' && rest[0] !== undefined ? COMMANDS[rest[0]] : undefined;
    io.stdout.write(topic?.usage ?? USAGE);
    return 0;
  }
  if (name === 'version' || name === '--version') {
    io.stdout.write(`trellis ${VERSION}\n`);
    return 0;
  }
  const command = COMMANDS[name];
  if (command === undefined) {
    io.stderr.write(`trellis: unknown command "${name}" [TRELLIS_CLI_USAGE]\n\n${USAGE}`);
    return 2;
  }
  try {
    return await command.run(rest, io);
  } catch (err) {
    if (isTrellisError(err)) {
      io.stderr.write(`trellis ${name}: ${err.message} [${err.code}]\n`);
      return err.code === 'TRELLIS_CLI_USAGE' ? 2 : 1;
    }
    throw err;
  }
}
