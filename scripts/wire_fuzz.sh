#!/usr/bin/env bash
# Long black-box wire-fuzz run: the same test `cargo test` runs for 8 s, for
# SECONDS (default 300) with SEED (default the test's fixed seed) and WORKERS
# concurrent fuzzing connections (default 12), on a release build.
# Usage: scripts/wire_fuzz.sh [SECONDS] [SEED] [WORKERS]
set -euo pipefail
cd "$(dirname "$0")/.."
export NATRIUM_WIRE_FUZZ_SECS=${1:-300}
[ -n "${2:-}" ] && export NATRIUM_WIRE_FUZZ_SEED=$2
export NATRIUM_WIRE_FUZZ_WORKERS=${3:-12}
exec cargo test --release --test it wire_fuzz -- --nocapture
