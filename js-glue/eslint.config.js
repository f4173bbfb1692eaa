// ESLint (flat config): typescript-eslint's recommended + stylistic type-checked rules for src/,
// the JS recommended set for tests and scripts. `make lint` runs it with --max-warnings 0.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/**'] },
  js.configs.recommended,
  {
    files: ['src/**/*.ts'],
    extends: [...tseslint.configs.strictTypeChecked, ...tseslint.configs.stylisticTypeChecked],
    languageOptions: {
      parserOptions: { project: './tsconfig.json', tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // Public names: PascalCase types/classes, camelCase members; no I-prefix on interfaces.
      '@typescript-eslint/naming-convention': [
        'error',
        { selector: 'typeLike', format: ['PascalCase'] },
        {
          selector: 'interface',
          format: ['PascalCase'],
          custom: { regex: '^I[A-Z]', match: false },
        },
        // Internal hooks between Connection and Channel start with `_` (stripped from .d.ts).
        {
          selector: 'method',
          modifiers: ['public'],
          format: ['camelCase'],
          leadingUnderscore: 'allow',
        },
        { selector: 'variable', format: ['camelCase', 'PascalCase', 'UPPER_CASE'] },
      ],
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true }],
      '@typescript-eslint/no-unnecessary-condition': 'off',
    },
  },
  // Layering (docs/browser-client.md, "Module layout"): SSH depends on the connection, never the
  // reverse. Only connect.ts (the public Connection with openSession) and the entry points import
  // from src/ssh/, and nothing but an entry point imports them, so neither connection.ts nor
  // anything it imports can reach src/ssh/ (type-only imports included). The session worker
  // (src/worker/) is the layer above both: it uses connect() and SshSession, and only the entry
  // points import it.
  {
    files: ['src/**/*.ts'],
    ignores: ['src/ssh/**', 'src/worker/**', 'src/connect.ts', 'src/index.ts', 'src/node.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { regex: '(^|/)ssh/', message: 'src/ssh/ builds on the connection, not the reverse.' },
            { regex: '(^|/)worker/', message: 'src/worker/ builds on the connection and SSH.' },
            {
              regex: '^\\.\\.?/(connect|index|node)\\.js$',
              message: 'only the entry points import connect.ts, index.ts and node.ts.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['src/worker/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '^\\.\\./(index|node)\\.js$',
              message: 'the session worker builds on connect.ts, not on the entry points.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['src/ssh/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '^\\.\\./(connect|index|node)\\.js$',
              message: 'the SSH layer builds on ConnectionBase (connection.ts), not on connect.ts.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['test/**/*.mjs', 'scripts/**/*.mjs', 'eslint.config.js'],
    languageOptions: {
      ecmaVersion: 2022,
      sourceType: 'module',
      globals: {
        process: 'readonly',
        console: 'readonly',
        Buffer: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        TextEncoder: 'readonly',
        TextDecoder: 'readonly',
        globalThis: 'readonly',
      },
    },
  },
);
