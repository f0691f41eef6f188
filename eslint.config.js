// Lint, plus the architecture's import boundaries (docs/architecture.md): each folder under src/ may import
// only the folders listed for it. The proxy (later) never imports control-plane code.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const LAYERS = {
  errors: [],
  base: ['errors'],
  config: ['errors', 'base'],
  model: ['errors', 'base'],
  store: ['errors', 'base', 'model'],
  mesh: ['errors', 'base', 'model', 'store'],
  pki: ['errors', 'base'],
  ca: ['errors', 'base', 'model', 'store', 'pki'],
  identity: ['errors', 'base', 'pki'],
  envoy: ['errors', 'base'],
  translate: ['errors', 'base', 'model'],
  discovery: ['errors', 'base', 'store'],
  xds: ['errors', 'base', 'model', 'store', 'pki', 'ca', 'envoy', 'translate', 'discovery'],
  api: ['errors', 'base', 'config', 'model', 'mesh', 'pki', 'ca', 'discovery'],
  // The data plane learns everything over xDS: it never imports the control plane (model, store, mesh, ca,
  // translate, xds, discovery, api).
  proxy: ['errors', 'base', 'pki', 'identity', 'envoy'],
  cli: null, // composition root: may import anything
};
const ALL = Object.keys(LAYERS);

const boundaries = Object.entries(LAYERS)
  .filter(([, allowed]) => allowed !== null)
  .map(([layer, allowed]) => ({
    files: [`src/${layer}/**/*.ts`],
    ignores: [`src/${layer}/**/*.test.ts`],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: ALL.filter((other) => other !== layer && !allowed.includes(other)).map((other) => ({
          group: [`../${other}/*`, `../../${other}/*`, `../${other}`, `../../${other}`],
          message: `src/${layer} may not import src/${other} (see docs/architecture.md)`,
        })),
      }],
    },
  }));

export default tseslint.config(
  { ignores: ['node_modules/**', 'dist/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-restricted-properties': ['error', { object: 'process', property: 'env', message: 'read the environment in src/config only' }],
    },
  },
  { files: ['src/config/**', 'src/cli/**', 'test/**', 'scripts/**', 'bench/**', '**/*.test.ts'], rules: { 'no-restricted-properties': 'off' } },
  ...boundaries,
);
