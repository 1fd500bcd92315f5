#!/usr/bin/env node
import { ensureFreshBundle } from '../scripts/fresh-bundle.mjs';

ensureFreshBundle();
const { main } = await import('../dist/cli.js');
process.exitCode = await main(process.argv.slice(2));
