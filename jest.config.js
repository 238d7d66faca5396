// Three lanes (README, "Testing"): unit (pure TypeScript: no addon, no Python; seconds), integration (the addon
// and the PyTorch references; run in band: each file already keeps every core busy), user (our library inside a
// user's jest suite, several files in parallel workers, importing 'resnet-torch' as users do).
// scripts/test.js runs them; `npx jest --selectProjects unit` works too.
const base = {
  testEnvironment: 'node',
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: '<rootDir>/tsconfig.test.json' }] },
  moduleFileExtensions: ['ts', 'js', 'json'],
};

module.exports = {
  projects: [
    { ...base, displayName: 'unit', testMatch: ['<rootDir>/test/unit/**/*.test.ts'] },
    {
      ...base,
      displayName: 'integration',
      testMatch: ['<rootDir>/test/integration/**/*.test.ts'],
      setupFilesAfterEnv: ['<rootDir>/test/support/remove-temp-dirs.ts'],
    },
    {
      ...base,
      displayName: 'user',
      testMatch: ['<rootDir>/test/user/**/*.test.ts'],
      moduleNameMapper: { '^resnet-torch$': '<rootDir>/dist/index.js' },
    },
  ],
  // Whole trainings and child processes: bounded by their own waits, and by this.
  testTimeout: 600_000,
  globalSetup: '<rootDir>/test/support/global-setup.js',
  reporters: ['default', '<rootDir>/test/support/count-reporter.js'],
};
