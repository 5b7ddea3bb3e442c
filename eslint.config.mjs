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
  // The layering, enforced: services never import each other, adapters and the core never
  // import a service, and no file reaches into another package's internals (deep imports).
  ...['storage-node', 'replicator', 'scheduler'].map((svc) => ({
    files: [`services/${svc}/src/**/*.ts`],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['@vmferry/storage-node', '@vmferry/replicator', '@vmferry/scheduler'].filter((p) => p !== `@vmferry/${svc}`), message: 'services never import each other: they talk over gRPC and NATS' },
            { group: ['@vmferry/*/*'], message: 'import a package by its entry point, not its internals' },
          ],
        },
      ],
    },
  })),
  {
    files: ['packages/{store-rocksdb,nats,telemetry,proto,testkit}/src/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['@vmferry/storage-node', '@vmferry/replicator', '@vmferry/scheduler', '@vmferry/cli'], message: 'adapters never import a service or the CLI' },
            { group: ['@vmferry/*/*'], message: 'import a package by its entry point, not its internals' },
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
