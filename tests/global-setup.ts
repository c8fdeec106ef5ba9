/**
 * Before any test file runs: probe the optional stacks (tests/stacks.ts) once and say, in one
 * line, which are missing and that their tests will be skipped — or, under KILN_REQUIRE_STACKS=1,
 * stop the run at once naming them.
 */
import { STACKS, requireStacks, stackProblem } from './stacks.js';

export default async function setup(): Promise<void> {
  const missing: string[] = [];
  for (const s of STACKS) {
    const why = await stackProblem(s);
    if (why !== undefined) missing.push(`${s} (${why})`);
  }
  if (missing.length === 0) {
    console.log(`kiln tests: every optional stack is here (${STACKS.join(', ')}); nothing will be skipped`);
    return;
  }
  if (requireStacks()) throw new Error(`KILN_REQUIRE_STACKS=1 and ${missing.length} stack(s) are missing: ${missing.join('; ')}`);
  console.log(`kiln tests: SKIPPING the tests of ${missing.length} missing stack(s): ${missing.join('; ')}. KILN_REQUIRE_STACKS=1 makes this a failure.`);
}
