#!/usr/bin/env bash
# Runs every cargo-fuzz target (inbound signature-header parsers, timestamps, ids, retry schedule, JSON payload
# intake, the TOML config file) for a while each, starting from and adding
# to the committed corpus in fuzz/corpus/. Usage: scripts/fuzz.sh [seconds per target, default 60: the short
# mode]; results and the 10-minute runs are in docs/security.md.
# cargo-fuzz needs nightly compiler flags; RUSTC_BOOTSTRAP lets the stable toolchain accept them.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds="${1:-60}"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
for target in $(cargo fuzz list); do
    mkdir -p "corpus/$target"
    echo "== $target: ${seconds}s"
    cargo fuzz run "$target" "corpus/$target" -- -max_total_time="$seconds" -max_len=4096 2>&1 \
        | grep -E '^#[0-9]+[[:space:]]+DONE|^Done|SUMMARY|panicked|ERROR' || true
    # A crash leaves an artifact and a non-zero status; fail loudly.
    if compgen -G "artifacts/$target/crash-*" >/dev/null; then
        echo "crash found in $target: see fuzz/artifacts/$target" >&2
        exit 1
    fi
done
