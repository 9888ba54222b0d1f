import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // A folder for the run's private PostgreSQL server, which starts on first use.
    globalSetup: ["test/support/postgres-global-setup.ts"],
    // End-to-end tests run real Claude CLI processes (about 200 MB each); two files at a time
    // keeps a 2-core machine responsive.
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
