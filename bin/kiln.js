#!/usr/bin/env node
// The `kiln` command. Plain JavaScript so that it runs without a build step: it registers tsx,
// which compiles kiln's TypeScript (and the user's model files) on import. The CommonJS hook is
// for model files in folders whose package.json does not say "type": "module".
import { register } from 'tsx/esm/api';
import { register as registerCjs } from 'tsx/cjs/api';

register();
registerCjs();
const { main } = await import('../src/cli/main.ts');
process.exit(await main(process.argv));
