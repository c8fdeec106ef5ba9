/**
 * The run's last line about skips: how many tests each missing stack took, and any test skipped
 * without saying why (a defect: every skip here must name its stack).
 */
import type { Reporter, TestModule, Vitest } from 'vitest/node';
import { SKIP_PREFIX } from './stacks.js';

export default class StacksReporter implements Reporter {
  /** A `-t` filter skips the tests it does not name: those are not unexplained skips. */
  private filtered = false;

  onInit(vitest: Vitest): void {
    this.filtered = vitest.config.testNamePattern !== undefined;
  }

  onTestRunEnd(modules: ReadonlyArray<TestModule>): void {
    const byStack = new Map<string, { count: number; why: string }>();
    const unexplained: string[] = [];
    for (const m of modules) {
      for (const t of m.children.allTests()) {
        const r = t.result();
        if (r.state !== 'skipped') continue;
        const note = r.note ?? '';
        if (!note.startsWith(SKIP_PREFIX)) {
          if (this.filtered) continue;
          unexplained.push(`${m.moduleId.split('/tests/').at(-1)} › ${t.fullName}`);
          continue;
        }
        const [stack, ...why] = note.slice(SKIP_PREFIX.length).split(': ');
        const e = byStack.get(stack!) ?? { count: 0, why: why.join(': ') };
        e.count++;
        byStack.set(stack!, e);
      }
    }
    const total = [...byStack.values()].reduce((a, e) => a + e.count, 0);
    if (total > 0)
      console.log(`\nkiln tests: SKIPPED ${total} test(s) of missing stacks: ${[...byStack].map(([s, e]) => `${s} ${e.count} (${e.why})`).join('; ')}. KILN_REQUIRE_STACKS=1 makes this a failure.`);
    if (unexplained.length) console.log(`\nkiln tests: ${unexplained.length} test(s) skipped without naming a stack: ${unexplained.join('; ')}`);
  }
}
