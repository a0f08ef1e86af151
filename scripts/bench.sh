#!/usr/bin/env bash
# Runs the workload benchmarks (benches/workloads.rs, package nn-benches) with default flags and with
# `-C target-cpu=native`, and prints a markdown report: the machine, the table of generated
# time, baseline time and ratio per workload for each configuration, and the compile time of
# the benchmark crate. Times are criterion's median estimates (new/estimates.json).
#
#   scripts/bench.sh              # both configurations
#   scripts/bench.sh default      # only default flags (what users build with)
#   scripts/bench.sh native       # only -C target-cpu=native
#
# Extra arguments after the configuration go to criterion, e.g. `scripts/bench.sh default xor`.
# The native build has its own target directory (target/native), so the two configurations
# do not rebuild each other's artifacts.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

which="${1:-both}"
shift || true

WORKLOADS=(xor digits mnist infer online amp_lstm_step amp_gru_step amp_lstm_window conv conv_infer freeze)
# Absolute: cargo runs the bench binary in its package's folder (benches/), and criterion reads
# CRITERION_HOME relative to that.
DEFAULT_DIR="$PWD/target"
NATIVE_DIR="$PWD/target/native"

# Criterion writes its estimates under $CRITERION_HOME (default: <target dir>/criterion).
run_config() { # name target_dir rustflags [criterion args]
    local name="$1" dir="$2" flags="$3"
    shift 3
    echo ">>> cargo bench -p nn-benches --bench workloads (${name}: RUSTFLAGS='${flags}')" >&2
    RUSTFLAGS="$flags" CARGO_TARGET_DIR="$dir" CRITERION_HOME="$dir/criterion" \
        cargo bench -p nn-benches --bench workloads -- "$@" >&2
}

# Median of one benchmark in nanoseconds, from criterion's estimates.
median_ns() { # dir group function
    local file="$1/criterion/$2/$3/new/estimates.json"
    if [[ -f "$file" ]]; then jq '.median.point_estimate' "$file"; else echo "nan"; fi
}

# A duration in nanoseconds, in a readable unit.
human() {
    awk -v t="$1" 'BEGIN {
        if (t != t + 0) { print "n/a"; exit }
        if (t < 1e3) printf "%.1f ns", t;
        else if (t < 1e6) printf "%.2f us", t / 1e3;
        else printf "%.3f ms", t / 1e6 }'
}

table() { # name dir
    local name="$1" dir="$2"
    echo
    echo "#### ${name}"
    echo
    echo "| workload | generated | baseline | generated / baseline |"
    echo "| --- | ---: | ---: | ---: |"
    for w in "${WORKLOADS[@]}"; do
        local g b
        g=$(median_ns "$dir" "$w" generated)
        b=$(median_ns "$dir" "$w" baseline)
        ratio=$(awk -v g="$g" -v b="$b" 'BEGIN { if (g != g + 0 || b != b + 0 || b == 0) print "n/a"; else printf "%.2fx", g / b }')
        echo "| ${w} | $(human "$g") | $(human "$b") | ${ratio} |"
    done
}

# The user-defined activation against the builtin it equals (the `activation` group).
activation_row() { # name dir
    local dir="$2" u b ratio
    u=$(median_ns "$dir" activation user)
    b=$(median_ns "$dir" activation builtin)
    ratio=$(awk -v u="$u" -v b="$b" 'BEGIN { if (u != u + 0 || b != b + 0 || b == 0) print "n/a"; else printf "%.2fx", u / b }')
    echo
    echo "| ${1}: activation | user \`\\|x\\| x * sigmoid(x)\` | builtin \`SiLU\` | user / builtin |"
    echo "| --- | ---: | ---: | ---: |"
    echo "| Adam step, 16-32-32-4, one sample | $(human "$u") | $(human "$b") | ${ratio} |"
}

compile_time() { # dir rustflags
    local dir="$1" flags="$2"
    # Everything else is built; only the benchmark crate (the four network! declarations and
    # the baselines) is rebuilt.
    RUSTFLAGS="$flags" CARGO_TARGET_DIR="$dir" cargo build --release -p nn-benches --benches >&2 2>/dev/null || true
    touch benches/workloads.rs
    local start end
    start=$(date +%s.%N)
    RUSTFLAGS="$flags" CARGO_TARGET_DIR="$dir" cargo build --release -p nn-benches --benches >&2
    end=$(date +%s.%N)
    awk -v s="$start" -v e="$end" 'BEGIN { printf "%.1f s", e - s }'
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
results=()
if [[ "$which" == "both" || "$which" == "default" ]]; then
    run_config "default flags" "$DEFAULT_DIR" "" "$@"
    compile_default=$(compile_time "$DEFAULT_DIR" "")
fi
if [[ "$which" == "both" || "$which" == "native" ]]; then
    run_config "native" "$NATIVE_DIR" "-C target-cpu=native" "$@"
    compile_native=$(compile_time "$NATIVE_DIR" "-C target-cpu=native")
fi
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

echo "### Workload benchmarks"
echo
echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "- commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . 2>/dev/null || echo ' (with uncommitted changes)')"
echo "- machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; $(lscpu | sed -n 's/^L2 cache: *//p') L2"
echo "- SIMD: $(grep -o -w -E 'avx2|fma|avx512f' /proc/cpuinfo | sort -u | tr '\n' ' ')"
echo "- toolchain: $(rustc --version)"
echo "- load average before / after: ${load_before} / ${load_after}"
echo "- times: criterion median of one step (one forward for infer; one time step of one stream for amp_lstm_step and amp_gru_step; one window of 64 steps of 8 streams for amp_lstm_window; one Adam step at batch 32 for conv, one single-sample forward for conv_infer), f32, one thread"
if [[ -n "${compile_default:-}" ]]; then
    table "Default flags (what users build with)" "$DEFAULT_DIR"
    activation_row "default" "$DEFAULT_DIR"
fi
if [[ -n "${compile_native:-}" ]]; then
    table "-C target-cpu=native" "$NATIVE_DIR"
    activation_row "native" "$NATIVE_DIR"
fi
echo
echo "#### Compile time of the benchmark crate"
echo
echo "\`touch benches/workloads.rs && cargo build --release -p nn-benches --benches\` (dependencies already built):"
[[ -n "${compile_default:-}" ]] && echo "- default flags: ${compile_default}"
[[ -n "${compile_native:-}" ]] && echo "- native: ${compile_native}"
exit 0
