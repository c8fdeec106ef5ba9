import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    setupFiles: ['tests/setup.ts'],
    // Probes the optional stacks (gpu devices, Chromium, PyTorch) and names what will be skipped.
    globalSetup: ['tests/global-setup.ts'],
    reporters: ['default', './tests/stacks-reporter.ts'],
    // CLI tests spawn `node bin/kiln.js`, which type-checks model files with ts-morph (~2 s each).
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
