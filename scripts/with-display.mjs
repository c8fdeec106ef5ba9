// Runs a command with an X display, for headless-gl (the gpu backend's WebGL device in Node):
// under `xvfb-run -a` when there is no DISPLAY and xvfb-run is installed, else as it is.
import { spawnSync } from 'node:child_process';

const [cmd, ...args] = process.argv.slice(2);
if (!cmd) {
  console.error('usage: node scripts/with-display.mjs COMMAND [ARGS...]');
  process.exit(2);
}
const haveXvfb = spawnSync('sh', ['-c', 'command -v xvfb-run'], { stdio: 'ignore' }).status === 0;
const run = !process.env.DISPLAY && haveXvfb ? ['xvfb-run', ['-a', cmd, ...args]] : [cmd, args];
const r = spawnSync(run[0], run[1], { stdio: 'inherit' });
if (r.error) {
  console.error(`cannot run ${run[0]}: ${r.error.message}`);
  process.exit(1);
}
process.exit(r.status ?? 1);
