import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import reactHooks from 'eslint-plugin-react-hooks';
import globals from 'globals';

// Imports go only downward: ui -> worker API types -> session -> engine -> sparsemm, model-io -> shaders
// (README, "Layout"). Each folder of src/ lists the folders it must not import; an upward import fails the lint.
const layerRule = 'Imports go only downward: ui -> worker API types -> session -> engine -> sparsemm, model-io -> shaders (README, "Layout").';
const forbidFolders = (folders, extra = []) => ({
  'no-restricted-imports': ['error', {
    patterns: [
      { regex: `^(\\.\\./)+(${folders.join('|')})(/|$)`, message: layerRule },
      ...extra,
    ],
  }],
});
const layers = [
  { files: ['src/sparsemm/**/*.{ts,tsx}'], rules: forbidFolders(['model-io', 'engine', 'session', 'worker', 'ui', 'cli', 'shaders']) },
  { files: ['src/model-io/**/*.{ts,tsx}'], rules: forbidFolders(['sparsemm', 'engine', 'session', 'worker', 'ui', 'cli', 'shaders']) },
  { files: ['src/engine/**/*.{ts,tsx}'], rules: forbidFolders(['session', 'worker', 'ui', 'cli']) },
  { files: ['src/session/**/*.{ts,tsx}'], rules: forbidFolders(['worker', 'ui', 'cli', 'shaders']) },
  { files: ['src/worker/**/*.{ts,tsx}'], rules: forbidFolders(['ui', 'cli', 'shaders']) },
  {
    // The UI sees the engine only through the worker API's types (and starts the worker by URL).
    files: ['src/ui/**/*.{ts,tsx}'],
    rules: forbidFolders(['session', 'engine', 'sparsemm', 'model-io', 'cli', 'shaders'], [
      { regex: '^(\\.\\./)+worker/(?!api$)', message: `${layerRule} The UI imports only src/worker/api.` },
    ]),
  },
  { files: ['src/cli/**/*.{ts,tsx}'], rules: forbidFolders(['ui', 'worker']) },
];

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'test-results/', 'bench-results/', 'public/fixtures/', '.fixtures/', '.gpu-kit/', '.gpu-kit-cache/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.{ts,tsx}'],
    languageOptions: { globals: { ...globals.browser, ...globals.node } },
    plugins: { 'react-hooks': reactHooks },
    rules: {
      ...reactHooks.configs.recommended.rules,
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-eval': 'error',
      'no-new-func': 'error',
    },
  },
  { files: ['**/*.{js,mjs}'], languageOptions: { globals: { ...globals.node } } },
  ...layers,
);
