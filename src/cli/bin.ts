#!/usr/bin/env node
/**
 * The `lockstep` command. Installed, it runs compiled from dist/, the same copy of the
 * library that a user's system module imports as 'lockstep' (two copies would refuse each
 * other's actor definitions); main() registers tsx only to load a TypeScript system module.
 * In this repo, `npm run lockstep` runs it from source under tsx.
 */
import { main } from './main.ts';

process.exitCode = await main(process.argv);
