// ESLint for the TypeScript and the scripts (typescript-eslint's recommended rules); Prettier owns the layout.
const js = require('@eslint/js');
const tseslint = require('typescript-eslint');
const globals = require('globals');

module.exports = tseslint.config(
  { ignores: ['dist/', 'build/', '.test-build/', '.gpu/', 'node_modules/', 'runs/', 'coverage/', 'docs/api/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      // `_name` marks what a destructuring or a signature must name but does not use.
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' },
      ],
      // The addon and the scripts are CommonJS.
      '@typescript-eslint/no-require-imports': 'off',
    },
  },
  // A function of lib/ that is a list of steps stays short enough to read as one: longer, it becomes named steps.
  {
    files: ['lib/**/*.ts'],
    rules: { 'max-lines-per-function': ['error', { max: 80, skipBlankLines: true, skipComments: true, IIFEs: true }] },
  },
  { files: ['test/**/*.ts'], languageOptions: { globals: { ...globals.jest } } },
);
