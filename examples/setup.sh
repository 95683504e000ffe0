#!/usr/bin/env bash
# Generates the demo's two Prisma 7 clients (offline: generate never runs the schema engine).
set -euo pipefail
cd "$(dirname "$0")/.."
export PRISMA_SCHEMA_ENGINE_BINARY="$PWD/test/fixtures/bin/schema-engine" PRISMA_HIDE_UPDATE_MESSAGE=1 CHECKPOINT_DISABLE=1
for schema in examples/prisma/*.prisma; do
  out="examples/generated/$(basename "$schema" .prisma)"
  if [ -d "$out" ] && [ "$out" -nt "$schema" ]; then continue; fi
  node_modules/.bin/prisma generate --schema "$schema" > /dev/null 2>&1 || node_modules/.bin/prisma generate --schema "$schema"
  touch "$out"
done
