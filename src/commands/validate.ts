import { displayPath } from '../runner/fsutil.js';
import { formatDiagnostic, PipelineError } from '../runner/diagnostics.js';
import { loadPipeline } from '../runner/plan.js';
import { allowOutsideOption, EXIT, flag, type Command } from './shared.js';

export const validateCommand: Command = {
  name: 'validate',
  args: '<files...>',
  describe: 'check pipeline files; print every error at file:line:col',
  options: [allowOutsideOption],
  async run(args) {
    let status: number = EXIT.ok;
    for (const file of args.positionals) {
      try {
        const plan = await loadPipeline(file, { allowOutsideModules: flag(args, 'allowOutsideModules') });
        console.log(`${file}: ok (${plan.stageNames.length} stages, ${plan.instances.length} instances)`);
        // Importing a module runs its top level: say which user code that was.
        const modules = [...new Set(plan.instances.filter((i) => i.ref.type === 'module').map((i) => i.ref.sourceFile))];
        for (const module of modules) console.log(`  imported stage module ${displayPath(module)}`);
      } catch (error) {
        if (!(error instanceof PipelineError)) throw error;
        for (const d of error.diagnostics) console.error(formatDiagnostic(d, error.sourceText));
        status = EXIT.invalid;
      }
    }
    return status;
  },
};
