#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The whole test suite: setup, generated-code check, types, lint, layering, API docs, unit and
# integration tests, then every benchmark in smoke mode (scripts/bench-smoke.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/peers.sh

echo "== typecheck" >&2
npx --no-install tsc -p . --noEmit
echo "== lint" >&2
npx --no-install biome check --error-on-warnings . >/dev/null
echo "== layers" >&2
npm run --silent check:layers
echo "== API docs (warnings are errors)" >&2
npm run --silent docs >/dev/null
echo "== tests" >&2
mapfile -t files < <(find src test -name '*.test.ts' | sort)
node --import tsx --test --test-concurrency=2 --test-timeout=300000 "${files[@]}"
echo "== bench smoke" >&2
bash scripts/bench-smoke.sh
