/**
 * What a speed figure needs beside it: the CPU model, its core count, and the instruction set
 * oneDNN dispatches to. The machines under this project change between sessions (a Zen 5 with
 * AVX-512, a Zen 3 with AVX2 only), and a figure without its machine cannot be compared.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { loadNativeAddon } from './native-addon.js';

/** `AMD EPYC (family 25, model 1) · 2 cores · oneDNN ISA avx2`. */
export function machineSummary(): string {
  let model = 'unknown CPU';
  try {
    const info = readFileSync('/proc/cpuinfo', 'utf8');
    const field = (name: string) => new RegExp(`^${name}\\s*:\\s*(.*)$`, 'm').exec(info)?.[1]?.trim();
    model = `${field('model name') ?? model} (family ${field('cpu family') ?? '?'}, model ${field('model') ?? '?'})`;
  } catch {
    // Not Linux: the model stays unknown; the ISA below still says what oneDNN runs.
  }
  const native = loadNativeAddon();
  const isa = 'addon' in native ? `oneDNN ISA ${native.addon.cpuIsa()}` : 'native kernels not built';
  return `${model} · ${availableParallelism()} cores · ${isa}`;
}
