// ESLint: typescript-eslint strictTypeChecked; no floating promises, no `any`, and the
// pure core may not import I/O modules (fs, net, grpc, nats, rocksdb, otel).
import tseslint from 'typescript-eslint';
import { importX } from 'eslint-plugin-import-x';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', 'packages/proto/src/gen/**', 'scripts/**', '**/bin/**', 'eslint.config.mjs'] },
  ...tseslint.configs.strictTypeChecked,
  {
    // No import cycles inside a package (project references already forbid them between packages).
    plugins: { 'import-x': importX },
    settings: {
      ...importX.flatConfigs.typescript.settings,
      'import-x/resolver-next': [
        createTypeScriptImportResolver({
          project: ['packages/*/tsconfig.json', 'services/*/tsconfig.json', 'test/tsconfig.json', 'loadtest/tsconfig.json'],
          noWarnOnMultipleProjects: true,
        }),
      ],
    },
    rules: { 'import-x/no-cycle': ['error', { ignoreExternal: true }] },
  },
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-explicit-any': 'error',
      // Numbers read well in messages; `() => resolve()` returning void is the idiom.
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true }],
      '@typescript-eslint/no-confusing-void-expression': ['error', { ignoreArrowShorthand: true }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  // The layering, enforced. ESLint keeps only the last `no-restricted-imports` that matches a
  // file, so each area lists every rule that applies to it.
  ...areas().map(({ files, ignores, patterns }) => ({ files, ignores, rules: { 'no-restricted-imports': ['error', { patterns }] } })),
  {
    files: ['**/test/**/*.ts', 'loadtest/**/*.ts', 'test/**/*.ts'],
    rules: {
      '@typescript-eslint/require-await': 'off',
      // A test's `let site: Site` is assigned in before(); after() must cope with a before()
      // that failed half-way, so its `site?.stop()` is not the unnecessary check it looks like.
      '@typescript-eslint/no-unnecessary-condition': 'off',
      // Floating promises are checked in tests too; node:test's test()/describe() promises are
      // the runner's to await.
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          allowForKnownSafeCalls: [
            { from: 'package', package: 'node:test', name: ['test', 'describe', 'it', 'suite', 'before', 'after', 'beforeEach', 'afterEach'] },
          ],
        },
      ],
    },
  },
);

/** Each area of the tree with every import it may not make. */
function areas() {
  const services = ['storage-node', 'replicator', 'scheduler'];
  const noDeep = { group: ['@vmferry/*/*'], message: 'import a package by its entry point, not its internals' };
  // Only the gRPC edge speaks gRPC: grpc-js and the generated wire code stay behind it, so
  // services and the CLI see core types and core errors. Tests may use raw clients (a test
  // of bad input has to send what no typed client would).
  const noGrpc = { group: ['@grpc/grpc-js', '@vmferry/proto'], message: 'only @vmferry/grpc-edge imports grpc-js and the generated wire code' };
  const noService = {
    group: ['@vmferry/storage-node', '@vmferry/replicator', '@vmferry/scheduler', '@vmferry/cli'],
    message: 'adapters never import a service or the CLI',
  };
  const io = ['node:fs*', 'fs', 'node:net', 'net', 'node:child_process', '@grpc/*', '@nats-io/*', 'rocksdb-native', '@opentelemetry/*', 'zstd-napi'];
  return [
    { files: ['packages/core/src/**/*.ts'], patterns: [{ group: io, message: 'the core is pure: no I/O modules' }, noService, noDeep] },
    ...services.map((svc) => ({
      files: [`services/${svc}/src/**/*.ts`],
      patterns: [
        { group: services.filter((s) => s !== svc).map((s) => `@vmferry/${s}`), message: 'services never import each other: they talk over gRPC and NATS' },
        { group: ['@vmferry/cli'], message: 'a service never imports the CLI' },
        noGrpc,
        noDeep,
      ],
    })),
    { files: ['packages/{store-rocksdb,nats,telemetry,testkit}/src/**/*.ts'], patterns: [noService, noGrpc, noDeep] },
    { files: ['packages/{grpc-edge,proto}/src/**/*.ts'], patterns: [noService, noDeep] },
    { files: ['packages/cli/src/**/*.ts', 'loadtest/src/**/*.ts'], patterns: [noGrpc, noDeep] },
  ].map((a) => ({ ignores: [], ...a }));
}
