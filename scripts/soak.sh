#!/usr/bin/env bash
# The soak test (src/bin/ssp-soak/): builds `ssp` and `ssp-soak` in the dev
# profile (SurrealDB's crates are optimised there already; a release build of
# its server takes over an hour on 2 cores), then runs the soak. Arguments go
# to ssp-soak:
#
#   scripts/soak.sh                                   # 10 minutes
#   scripts/soak.sh --minutes 2 --db-period-secs 20   # a short run
#   scripts/soak.sh --seed 42 --out /tmp/soak.json
#
# Exit code: 0 passed, 1 a check failed, 2 the soak could not run.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Built through `cargo test` so that the dependencies get the features the
# test suite gives them (dev-dependencies are unified in): a target directory
# warm from `cargo test` is then reused, where a plain `cargo build` would
# compile SurrealDB again.
cargo test --no-run --features soak --test integration
target_dir="$(cargo metadata --format-version 1 --no-deps | sed -E 's/.*"target_directory":"([^"]*)".*/\1/')"
exec "$target_dir/debug/ssp-soak" --ssp "$target_dir/debug/ssp" "$@"
