/**
 * Work that must finish before the process exits. Some devices are native libraries with threads of
 * their own (Dawn, behind WebGPU in Node): exiting while they still hold callbacks aborts the
 * process. A backend that opens one registers its release here; the CLI awaits them before exit.
 */
const hooks = new Set<() => Promise<void>>();

export function onShutdown(hook: () => Promise<void>): () => void {
  hooks.add(hook);
  return () => hooks.delete(hook);
}

export async function shutdown(): Promise<void> {
  const all = [...hooks];
  hooks.clear();
  await Promise.allSettled(all.map((h) => h()));
}
