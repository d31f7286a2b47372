#!/usr/bin/env bash
# Runs one AFL++ fuzz target for SECONDS (default 3600) on stable Rust.
# Needs cargo-afl (`cargo install cargo-afl`; it builds AFL++ once).
# Usage: scripts/fuzz.sh TARGET [SECONDS]   (TARGET: parser config connect subject sublist leaf)
# Findings land in target/fuzz/TARGET/default/crashes; copy each one to
# fuzz/crashes/TARGET/ once fixed, so the replay test keeps it fixed.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:?usage: scripts/fuzz.sh TARGET [SECONDS]}
secs=${2:-3600}
command -v cargo-afl >/dev/null || { echo "cargo-afl missing: cargo install cargo-afl" >&2; exit 1; }
(cd fuzz && cargo afl build --release --bin "$target")
out=target/fuzz/$target
mkdir -p "$out"
export AFL_SKIP_CPUFREQ=1 AFL_NO_AFFINITY=${AFL_NO_AFFINITY:-1} AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1
dict=()
[ -f "fuzz/dict/$target.dict" ] && dict=(-x "fuzz/dict/$target.dict")
cargo afl fuzz -i "fuzz/corpus/$target" -o "$out" -V "$secs" "${dict[@]}" -- "fuzz/target/release/$target"
grep -E "execs_done|execs_per_sec|corpus_count|bitmap_cvg|saved_crashes|saved_hangs" "$out/default/fuzzer_stats"
