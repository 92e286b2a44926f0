#!/usr/bin/env bash
# Coverage-guided fuzzing of every harness in tests/UrlDisk.Fuzz (a copy of UrlDisk.dll instrumented by SharpFuzz;
# mutations of the checked-in corpus tests/fuzz-corpus). CI runs it briefly with a fixed seed; run it longer by hand:
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET|all] [SEED]      e.g. scripts/fuzz.sh 600 qcow2-image
# A finding is saved in the current directory and makes the exit code 1; fix it, then add the input to
# tests/fuzz-corpus/TARGET/ (named after the bug) so the test suite replays it from then on.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
target=${2:-all}
seed=${3:-$RANDOM}
dotnet build tests/UrlDisk.Fuzz -c Release --nologo -v q >/dev/null
exec dotnet tests/UrlDisk.Fuzz/bin/Release/net10.0/UrlDisk.Fuzz.dll run "$target" --seconds "$seconds" --seed "$seed" --coverage
