// @ts-check
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: [
      'dist/**',
      'node_modules/**',
      'test-results/**',
      'playwright-report/**',
      'recordings/**',
      'infra/cdk.out/**',
      'eslint.config.js',
      'vite-env.d.ts',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        projectService: true,
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      'no-console': 'error',
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    files: [
      'agent/**/*.ts',
      'emulator/**/*.ts',
      'infra/**/*.ts',
      'scripts/**/*.ts',
      'test/**/*.ts',
      '*.config.ts',
    ],
    languageOptions: { globals: globals.node },
  },
  {
    files: ['page/**/*.ts', 'WebRTC/**/*.ts', 'emulator/player/web/**/*.ts'],
    languageOptions: { globals: { ...globals.browser, ...globals.worker } },
  },
  {
    // Command-line entry points and the demo report print to the terminal on purpose.
    files: ['scripts/**/*.ts', 'test/support/summaryReporter.ts'],
    rules: { 'no-console': 'off' },
  },
);
