#!/usr/bin/env bash
# Runs every test: installs the real servers and tools the integration tests start (nginx, QEMU,
# nbdkit, vsftpd, tftpd, …) when they are missing, then builds and tests the solution in Release.
# Usage: scripts/test.sh [extra dotnet test arguments, e.g. --filter FullyQualifiedName~Http]
set -euo pipefail

cd "$(dirname "$0")/.."

# Debian packages the tests need. Add new ones here (one list, so CI and developers agree).
# clang and zlib1g-dev are the Native AOT toolchain: ./urldisk, and so the tests, run the native binary.
DEBIAN_PACKAGES="nginx-light strace qemu-utils qemu-block-extra openssl curl nbdkit libnbd-bin python3-libnbd qemu-system-x86 vsftpd tftpd-hpa tftp-hpa python3 time grub-pc-bin grub-common xorriso mtools busybox-static cpio clang zlib1g-dev xz-utils gzip zstd fuse3"

missing_packages() {
    local p missing=()
    for p in $DEBIAN_PACKAGES; do
        if [[ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]]; then
            missing+=("$p")
        fi
    done
    echo "${missing[@]:-}"
}

install_packages() {
    local missing
    missing="$(missing_packages)"
    if [[ -z "$missing" ]]; then
        return 0
    fi
    echo "test.sh: installing Debian packages: $missing"
    local sudo=""
    if [[ "$(id -u)" != 0 ]]; then
        sudo="sudo"
    fi
    # Installing nginx, vsftpd and tftpd would start them as system services on fixed ports; the
    # tests start their own instances on free ports, so keep the package scripts from starting any.
    local policy=/usr/sbin/policy-rc.d created_policy=""
    if [[ ! -e "$policy" ]]; then
        printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
        $sudo chmod +x "$policy"
        created_policy=1
    fi
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update
    # shellcheck disable=SC2086 # the list is meant to split into words
    $sudo apt-get install -y --no-install-recommends $missing
    if [[ -n "$created_policy" ]]; then
        $sudo rm -f "$policy"
    fi
}

install_packages

export DOTNET_CLI_TELEMETRY_OPTOUT=1
export DOTNET_NOLOGO=1
export DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

dotnet restore UrlDisk.slnx

# The integration tests run the CLI as users do, through ./urldisk; build it here once, so its build time
# (and a note if it falls back to the JIT build) shows in the log rather than inside the first test.
echo "test.sh: building the urldisk CLI with ./urldisk"
start=$SECONDS
./urldisk --version
echo "test.sh: ./urldisk ready after $((SECONDS - start)) s"

log="$(mktemp)"
trap 'rm -f "$log"' EXIT

# Build the whole solution first: the samples and the JIT CLI are not test dependencies, but the sample and
# package tests run and pack them (dotnet test alone builds only the test projects' references).
dotnet build UrlDisk.slnx -c Release --no-restore -v q --nologo

# The console logger prints one "Passed!/Failed!  - Failed: F, Passed: P, …" line per test project.
status=0
# A test that hangs is stopped after 10 minutes and named, instead of eating CI's whole time limit.
dotnet test UrlDisk.slnx -c Release --no-build --logger "console;verbosity=minimal" \
    --blame-hang-timeout 10m --blame-hang-dump-type none "$@" 2>&1 | tee "$log" || status=$?

# One closing line for the whole run, summed over the projects.
passed=0
failed=0
while read -r f p; do
    failed=$((failed + f))
    passed=$((passed + p))
done < <(sed -nE 's/.*(Passed|Failed)!  *- *Failed: *([0-9]+), *Passed: *([0-9]+).*/\2 \3/p' "$log")

# A short coverage-guided fuzz run of every harness (fixed seed, a few seconds each); longer runs: scripts/fuzz.sh.
fuzz_status=0
if [[ $status -eq 0 ]]; then
    echo
    echo "fuzz: every harness for 4 s (scripts/fuzz.sh)"
    bash scripts/fuzz.sh 4 all 20261202 || fuzz_status=$?
fi

echo
echo "tests: $passed passed, $failed failed"
if [[ $status -eq 0 && $failed -gt 0 ]]; then
    status=1
fi
if [[ $status -eq 0 && $fuzz_status -ne 0 ]]; then
    echo "test.sh: the fuzz run found something (see above)" >&2
    status=1
fi
if [[ $status -eq 0 && $passed -eq 0 ]]; then
    echo "test.sh: no test ran" >&2
    status=1
fi
exit "$status"
