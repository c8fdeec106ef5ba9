/**
 * The optional system stacks some tests need: the gpu backend's two Node devices, Debian's
 * Chromium for the page test, and PyTorch for the training oracle. None comes with `npm install`,
 * so on a fresh machine (Node and npm only) their tests are skipped — loudly: the run's first and
 * last lines name each missing stack, why, and how many tests it took (global-setup.ts,
 * stacks-reporter.ts). `KILN_REQUIRE_STACKS=1` (set by .ci/run) turns every such skip into a
 * failure, so CI still proves every backend.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

export const STACKS = ['headlessgl', 'webgpu', 'chromium', 'pytorch'] as const;
export type Stack = (typeof STACKS)[number];

/** The note a skipped test carries: `needs <stack>: <why>`, which the reporter counts. */
export const SKIP_PREFIX = 'needs ';

export const PYTHON = '/usr/bin/python3';

const cache = new Map<Stack, string | undefined>();

/** Why `stack` cannot run here, or undefined when it can (probed once per process). */
export async function stackProblem(stack: Stack): Promise<string | undefined> {
  if (cache.has(stack)) return cache.get(stack);
  const why = await probe(stack);
  cache.set(stack, why);
  return why;
}

async function probe(stack: Stack): Promise<string | undefined> {
  switch (stack) {
    case 'headlessgl':
      return (await import('../backends/gpu/device.js')).headlessGlProblem();
    case 'webgpu':
      return (await import('../backends/gpu/device.js')).webgpuProblem();
    case 'chromium':
      return existsSync('/usr/bin/chromium') ? undefined : 'no Chromium at /usr/bin/chromium: apt-get install chromium';
    case 'pytorch': {
      if (!existsSync(PYTHON)) return `no ${PYTHON}: apt-get install python3-torch`;
      const r = spawnSync(PYTHON, ['-c', 'import torch'], { encoding: 'utf8' });
      return r.status === 0 ? undefined : `${PYTHON} cannot import torch: apt-get install python3-torch`;
    }
  }
}

export const requireStacks = (): boolean => process.env['KILN_REQUIRE_STACKS'] === '1';

/**
 * At the start of a test that needs `stack`: returns when it is here; skips the test with a
 * `needs …` note when it is not; fails instead under KILN_REQUIRE_STACKS=1.
 */
export async function needs(ctx: { skip(note?: string): never }, stack: Stack): Promise<void> {
  const why = await stackProblem(stack);
  if (why === undefined) return;
  if (requireStacks()) throw new Error(`${stack} is missing and KILN_REQUIRE_STACKS=1 requires it: ${why}`);
  ctx.skip(`${SKIP_PREFIX}${stack}: ${why}`);
}
