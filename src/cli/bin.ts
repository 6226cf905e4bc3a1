#!/usr/bin/env node
/** The `trellis` executable. */
import { applyV8Flags } from './v8-flags.js';

const argv = process.argv.slice(2);
applyV8Flags(argv);
// Imported only now, so that the V8 flags above are set before modules fill the heap.
const { main } = await import('./main.js');
process.exitCode = await main(argv, { stdout: process.stdout, stderr: process.stderr, cwd: process.cwd() });
