#!/usr/bin/env node
// The `kiln` command. Plain JavaScript so that it runs without a build step: it registers tsx,
// which compiles kiln's TypeScript (and the user's model files) on import.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
process.exit(await main(process.argv));
