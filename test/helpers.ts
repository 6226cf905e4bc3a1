/** Shared test helpers: the repository root, and running the CLI in-process. */
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { main } from '../src/cli/main.js';

/** The repository root (tests run from dist/test/...). */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

export interface CliResult {
  readonly status: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `trellis <args>` in this process, from the repository root, capturing its output. */
export async function runCli(args: readonly string[]): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const previous = process.cwd();
  process.chdir(ROOT);
  try {
    const status = await main(args, {
      stdout: { write: (s: string) => (stdout += s) },
      stderr: { write: (s: string) => (stderr += s) },
      cwd: ROOT,
    });
    return { status, stdout, stderr };
  } finally {
    process.chdir(previous);
  }
}
