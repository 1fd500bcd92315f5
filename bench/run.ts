// `npm run bench [-- section...]`: prints medians of repeated runs. Sections: runner, hashing,
// training, tsne, distributed (and training-cpu, minutes long, only when named).
import { benchDistributed } from './distributed.js';
import { benchHashing } from './hashing.js';
import { benchRunner } from './runner.js';
import { benchTraining, benchTrainingCpu } from './training.js';
import { benchTsne } from './tsne.js';
import { machineSummary } from '../src/ml/machine.js';
import { printTable, type BenchRow } from './util.js';

const sections: Record<string, () => Promise<BenchRow[]> | BenchRow[]> = {
  runner: () => benchRunner(),
  hashing: () => benchHashing(),
  training: () => benchTraining(),
  'training-cpu': () => benchTrainingCpu(),
  tsne: () => benchTsne(),
  distributed: () => benchDistributed(),
};
/** Sections run when none is named. */
const defaults = ['runner', 'hashing', 'training', 'tsne', 'distributed'];

const wanted = process.argv.slice(2);
const unknown = wanted.filter((w) => !(w in sections));
if (unknown.length) {
  console.error(`unknown section(s) ${unknown.join(', ')}; sections: ${Object.keys(sections).join(', ')}`);
  process.exit(2);
}
const rows: BenchRow[] = [];
for (const [name, run] of Object.entries(sections)) {
  if (wanted.length ? !wanted.includes(name) : !defaults.includes(name)) continue;
  process.stderr.write(`bench: ${name}…\n`);
  rows.push(...(await run()));
}
// Figures from different machines must never be confused: each table says where it ran.
console.log(`machine: ${machineSummary()}`);
printTable(rows);
