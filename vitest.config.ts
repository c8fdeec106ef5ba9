import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    setupFiles: ['tests/setup.ts'],
    // CLI tests spawn `node bin/kiln.js`, which type-checks model files with ts-morph (~2 s each).
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
