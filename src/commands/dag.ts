import { renderDot, renderMermaid, renderTextTree } from '../runner/dag-render.js';
import { EXIT, listOption, load, setOption, stringOption, type Command } from './shared.js';

const RENDERERS = { text: renderTextTree, mermaid: renderMermaid, dot: renderDot } as const;

export const dagCommand: Command = {
  name: 'dag',
  args: '<file>',
  describe: 'the stage graph of a pipeline',
  options: [{ flags: '--format <FORMAT>', description: 'how to draw it (default: text)', choices: Object.keys(RENDERERS) }, setOption],
  async run(args) {
    const plan = await load(args.positionals[0], { overrides: listOption(args, 'set') });
    const render = RENDERERS[(stringOption(args, 'format') ?? 'text') as keyof typeof RENDERERS];
    process.stdout.write(render(plan.graph));
    return EXIT.ok;
  },
};
