import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// Tests and examples import the package by name, as a user would; point those names at the
// sources so a test never runs against a stale build.
export default defineConfig({
  resolve: {
    alias: [
      { find: /^lockstep\/testing$/, replacement: fileURLToPath(new URL('./src/testing/index.ts', import.meta.url)) },
      { find: /^lockstep\/log$/, replacement: fileURLToPath(new URL('./src/log/index.ts', import.meta.url)) },
      { find: /^lockstep\/tensor$/, replacement: fileURLToPath(new URL('./src/tensor.ts', import.meta.url)) },
      { find: /^lockstep$/, replacement: fileURLToPath(new URL('./src/index.ts', import.meta.url)) },
    ],
  },
  test: {
    include: ['test/**/*.test.ts', 'property-tests/**/*.test.ts', 'examples/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
