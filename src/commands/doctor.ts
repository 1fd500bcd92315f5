import { availableParallelism } from 'node:os';
import type { BackendChoice } from '../ml/backend.js';
import { EXIT, integerOption, stringOption, UsageError, type Command } from './shared.js';

export const doctorCommand: Command = {
  name: 'doctor',
  args: '',
  describe: 'the TensorFlow.js route and why, its native kernels, what oneDNN chose, and a short training probe',
  options: [
    { flags: '--backend <B>', description: 'the route to probe (default: auto)', choices: ['auto', 'tensorflow', 'native', 'wasm', 'cpu'] },
    { flags: '--threads <N>', description: 'threads for the probe (default: all cores)' },
    { flags: '--seconds <S>', description: 'how long the probe trains (default 3)' },
  ],
  async run(args) {
    const threads = integerOption(args.options.threads, '--threads', availableParallelism());
    const seconds = args.options.seconds === undefined ? 3 : Number(args.options.seconds);
    if (!(seconds > 0)) throw new UsageError(`--seconds expects a positive number, got '${String(args.options.seconds)}'`);
    const { doctor } = await import('../ml/doctor.js');
    await doctor({ backend: (stringOption(args, 'backend') ?? 'auto') as BackendChoice, threads, seconds }, (line) => console.log(line));
    return EXIT.ok;
  },
};
