#!/usr/bin/env bash
# Prepares the test fixtures: installs the nested Prisma 6 project and generates every fixture client
# (Prisma 7 with the top-level prisma, Prisma 6 with the fixture's own) and the examples' clients, which tsc
# checks too. Works offline.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
fixtures=test/fixtures

if [ ! -d "$fixtures/prisma6/node_modules/prisma" ]; then
  (cd "$fixtures/prisma6" && npm ci --no-audit --no-fund --loglevel=error)
fi

# Prisma's CLI wants its native engines at start; generate never runs them, so stubs stand in.
export PRISMA_SCHEMA_ENGINE_BINARY="$root/$fixtures/bin/schema-engine"
export PRISMA_QUERY_ENGINE_LIBRARY="$root/$fixtures/bin/libquery_engine-stub.so.node"
touch "$PRISMA_QUERY_ENGINE_LIBRARY"
export PRISMA_HIDE_UPDATE_MESSAGE=1 CHECKPOINT_DISABLE=1

generate() { # dir, prisma binary
  local dir=$1 bin=$2
  for schema in "$dir"/schemas/*.prisma; do
    local name out
    name=$(basename "$schema" .prisma)
    out="$dir/generated/$name"
    # Regenerate only when the schema is newer than its client.
    if [ -d "$out" ] && [ "$out" -nt "$schema" ]; then continue; fi
    "$bin" generate --schema "$schema" > /dev/null 2>&1 || "$bin" generate --schema "$schema"
    touch "$out"
  done
}
generate "$fixtures/prisma7" "$root/node_modules/.bin/prisma" & p7=$!
generate "$fixtures/prisma6" "$root/$fixtures/prisma6/node_modules/.bin/prisma" & p6=$!
bash examples/setup.sh & px=$!
wait $p7
wait $p6
wait $px
