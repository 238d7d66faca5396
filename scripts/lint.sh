#!/usr/bin/env bash
# Lint and format checks, as CI runs them (npm run lint): types of lib/, tests and benchmarks; ESLint; Prettier
# (TypeScript and scripts); clang-format (C++, .clang-format); the import layering (scripts/check-imports.js);
# TypeDoc with warnings as errors (every exported class, function, type, variable and method documented; a property
# where its comment adds meaning).
# `npm run format` rewrites what Prettier and clang-format would change.
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-check}"
ts_files=(lib test harness bench scripts examples reliability fuzz jest.config.js eslint.config.js)
mapfile -t cpp_files < <(find native -name '*.h' -o -name '*.cpp' | sort)
if ! command -v clang-format >/dev/null; then
  echo "lint: clang-format is missing (Debian: apt-get install clang-format)" >&2
  exit 1
fi
if [ "$mode" = fix ]; then
  npx --no-install prettier --log-level warn --write "${ts_files[@]}"
  clang-format -i "${cpp_files[@]}"
  exit 0
fi
status=0
step() {
  echo "== $1"
  shift
  "$@" || status=1
}
step "tsc (lib)" npx --no-install tsc -p tsconfig.json --noEmit
step "tsc (tests, benchmarks)" npx --no-install tsc -p tsconfig.test.json
step "tsc (benchmarks as scripts/gpu compiles them)" npx --no-install tsc -p tsconfig.bench.json --noEmit
step "eslint" npx --no-install eslint --max-warnings 0 .
step "prettier" npx --no-install prettier --log-level warn --check "${ts_files[@]}"
step "clang-format" clang-format --dry-run --Werror "${cpp_files[@]}"
step "imports" node scripts/check-imports.js
step "typedoc (every exported symbol documented)" npx --no-install typedoc --emit none
exit "$status"
