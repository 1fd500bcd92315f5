// Compiles ablate's native kernels (native/ablate_native.cc, oneDNN) at install time with
// npm's own node-gyp against the Node headers already on this machine, so nothing is
// downloaded. Without oneDNN's headers or Node's, or if the compile fails, it says why
// and exits 0: ablate then trains on the wasm route. ABLATE_REQUIRE_NATIVE=1 (CI) makes
// any of those a failure instead.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const required = Boolean(process.env.ABLATE_REQUIRE_NATIVE);

function giveUp(why) {
  process.stderr.write(`ablate: native kernels not built: ${why}; training will use the wasm route.\n`);
  process.exit(required ? 1 : 0);
}

const headerDirs = ['/usr/include', '/usr/local/include', ...(process.env.CPATH ?? '').split(':').filter(Boolean)];
if (!headerDirs.some((dir) => existsSync(join(dir, 'dnnl.hpp')))) giveUp('oneDNN headers not found (apt-get install -y libdnnl-dev)');

// Node's headers ship with Node here (e.g. /usr/include/node); pointing node-gyp at them stops it downloading any.
const nodeDir = dirname(dirname(process.execPath));
if (!existsSync(join(nodeDir, 'include', 'node', 'node_api.h'))) giveUp(`Node's headers not found under ${nodeDir}/include/node`);

const candidates = [
  process.env.npm_config_node_gyp,
  process.env.npm_execpath && join(dirname(process.env.npm_execpath), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  join(nodeDir, 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
].filter(Boolean);
const nodeGyp = candidates.find((path) => existsSync(path));
if (!nodeGyp) giveUp("npm's node-gyp not found");

const result = spawnSync(process.execPath, [nodeGyp, 'rebuild', `--nodedir=${nodeDir}`, '--directory', join(root, 'native')], {
  encoding: 'utf8',
});
if (result.status !== 0) {
  process.stderr.write(`${result.stdout}${result.stderr}`.trim().split('\n').slice(-20).join('\n') + '\n');
  giveUp('the compile failed (output above)');
}
process.stderr.write('ablate: native kernels built (native/build/Release/ablate_native.node)\n');
