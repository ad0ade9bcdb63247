import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  root: fileURLToPath(new URL('..', import.meta.url)),
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    // Container tests talk to a real engine; give them room but never assert wall time.
    testTimeout: 120_000,
    hookTimeout: 300_000,
    pool: 'forks',
  },
});
