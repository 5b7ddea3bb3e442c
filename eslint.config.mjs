// ESLint: typescript-eslint type-checked rules; no floating promises, no `any`, and the
// pure core may not import I/O modules (fs, net, grpc, nats, rocksdb, otel).
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', 'packages/proto/src/gen/**', 'scripts/**', '**/bin/**', 'eslint.config.mjs'] },
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    files: ['packages/core/src/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['node:fs*', 'fs', 'node:net', 'net', 'node:child_process', '@grpc/*', '@nats-io/*', 'rocksdb-native', '@opentelemetry/*', 'zstd-napi'], message: 'the core is pure: no I/O modules' },
          ],
        },
      ],
    },
  },
  {
    files: ['**/test/**/*.ts', 'loadtest/**/*.ts', 'test/**/*.ts'],
    rules: { '@typescript-eslint/no-floating-promises': 'off', '@typescript-eslint/require-await': 'off' },
  },
);
