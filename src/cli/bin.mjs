#!/usr/bin/env node
// The `lockstep` command. System modules are usually TypeScript, so tsx is registered
// before the CLI loads; the CLI itself runs from source the same way.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('./main.ts');
process.exitCode = await main(process.argv);
