#!/usr/bin/env bash
# Runs the fuzz targets of tests/fuzz for a given time each, growing their corpora.
#
#   scripts/fuzz.sh [seconds-per-target] [target...]     (default: 180 s, every target)
#   FUZZ_CMIN=1 scripts/fuzz.sh ...                        also minimise each corpus after its run
#
# Each target runs on nightly (cargo-fuzz needs it; installed here if missing) as one process on
# one core, with debug assertions (an overflow is a crash), under AddressSanitizer, with
# libFuzzer's memory and per-input time limits. New inputs go into tests/fuzz/corpus/<target>/;
# a crash is written to tests/fuzz/artifacts/<target>/, to be minimised (`cargo +nightly fuzz
# tmin`) and kept in tests/fuzz/regressions/<target>/ under a name that says what it was, where
# tests/fuzz_replay.rs replays it on every `cargo test`.
#
# Prints one summary line per target (executions, corpus entries, coverage, crashes) and exits
# non-zero if any target crashed.
set -euo pipefail

seconds="${1:-180}"
shift || true
cd "$(dirname "${BASH_SOURCE[0]}")/../tests"

# The memory a process may use (libFuzzer's RSS limit, in MB) and the time one input may take.
RSS_LIMIT_MB="${RSS_LIMIT_MB:-2048}"
TIMEOUT_SECONDS="${TIMEOUT_SECONDS:-10}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
    mapfile -t targets < <(cargo +nightly fuzz list --fuzz-dir fuzz)
fi

logs="$(mktemp -d)"
summary=()
crashed=0
for target in "${targets[@]}"; do
    corpus="fuzz/corpus/$target"
    mkdir -p "$corpus"
    log="$logs/$target.log"
    printf '\n== %s: %ss\n' "$target" "$seconds"
    status=0
    cargo +nightly fuzz run --fuzz-dir fuzz --debug-assertions "$target" "$corpus" -- \
        -max_total_time="$seconds" -rss_limit_mb="$RSS_LIMIT_MB" -timeout="$TIMEOUT_SECONDS" \
        -print_final_stats=1 2>&1 | tee "$log" | grep -E '^#[0-9]+\s+(INITED|DONE|pulse)|^==|panicked|SUMMARY' || true
    status="${PIPESTATUS[0]}"
    if [ "${FUZZ_CMIN:-0}" = 1 ] && [ "$status" = 0 ]; then
        cargo +nightly fuzz cmin --fuzz-dir fuzz --debug-assertions "$target" "$corpus" \
            >"$logs/$target.cmin.log" 2>&1
    fi
    execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
    rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)"
    cov="$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1)"
    entries="$(find "$corpus" -type f | wc -l)"
    bytes="$(du -sk "$corpus" | cut -f1)"
    if [ "$status" = 0 ]; then
        crashes=0
    else
        crashes=1
        crashed=1
    fi
    summary+=("$(printf '%-18s execs %-10s (%s/s)  %-22s corpus %s files, %s KB  crashes %s' \
        "$target" "${execs:-?}" "${rate:-?}" "${cov:-cov: ?}" "$entries" "$bytes" "$crashes")")
    if [ "$crashes" != 0 ]; then
        echo "   $target crashed: see tests/fuzz/artifacts/$target/ and $log" >&2
    fi
done

printf '\n== summary (%ss per target; logs in %s)\n' "$seconds" "$logs"
printf '%s\n' "${summary[@]}"
exit "$crashed"
