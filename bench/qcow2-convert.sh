#!/usr/bin/env bash
# Issue 3: reading a compressed qcow2 over HTTP. A compressible raw image (text-like data, random data
# and zeros) is turned into a zlib-compressed qcow2 (qemu-img convert -c) and served by a local nginx;
# then `urldisk convert -O raw URL out.raw` is timed against `qemu-img convert -O raw URL out.raw`
# (QEMU's qcow2 over its curl driver), direct on loopback and through bench/delay-proxy.py (+20 ms RTT).
# Runs alternate between tools; every run is checked byte for byte (cmp) against the original raw image.
# Per run: wall time, CPU seconds (user+sys) and peak RSS (/usr/bin/time -v), requests (GET/HEAD lines in
# nginx's access log) and bytes moved (sum of $body_bytes_sent). Table: medians, the ratio to qemu-img (time)
# and to qemu-img -m 1 (CPU). The output is also written to bench/results/qcow2-convert.txt.
# (nbdkit 1.32 has no qcow2 decoder, so nbdkit + nbdcopy is not a contender here.)
# Target (issue 3): urldisk <= 0.8x qemu-img's time, and no more requests.
# Every tool run is wrapped in `timeout` (45 s, TOOL_TIMEOUT=secs to change): QEMU 7.2's curl driver hangs now and
# then; a run reaching the limit is reported as failed ("timeout") and left out of the medians.
# Usage: bench/qcow2-convert.sh [SIZE_MIB] [RUNS]   (default 256 MiB, 3 runs)
# Needs: nginx-light qemu-utils qemu-block-extra curl python3 time.
set -euo pipefail
size_mib=${1:-256}
runs=${2:-3}
limit=${TOOL_TIMEOUT:-45}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
tmp=$(mktemp -d /tmp/urldisk-bench-qcow2-XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait "${pids[@]}" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

source "$here/lib.sh"
require_tools nginx qemu-img curl python3 timeout /usr/bin/time

# The raw image, in 1 MiB chunks: per 8 chunks 4 text-like, 2 random, 2 zero (text compresses ~3-4x with zlib).
mkdir -p "$tmp/html" "$tmp/tmp"
python3 - "$tmp/disk.raw" "$size_mib" <<'PY'
import os, random, sys
path, mib = sys.argv[1], int(sys.argv[2])
rng = random.Random(42)
words = [''.join(rng.choice('abcdefghijklmnopqrstuvwxyz') for _ in range(rng.randint(2, 10))) for _ in range(5000)]
text = bytearray()
while len(text) < (9 << 20):
    line = ' '.join(rng.choices(words, k=rng.randint(4, 14)))
    text += (line + ('.\n' if rng.random() < 0.3 else ', ')).encode()
chunk = 1 << 20
with open(path, 'wb') as f:
    for i in range(mib):
        kind = i % 8
        if kind in (0, 2, 4, 5):
            start = rng.randrange(0, len(text) - chunk)
            f.write(text[start:start + chunk])
        elif kind in (1, 6):
            f.write(os.urandom(chunk))
        else:
            f.write(bytes(chunk))
PY
qemu-img convert -c -f raw -O qcow2 "$tmp/disk.raw" "$tmp/html/img.qcow2"
qcow2_bytes=$(stat -c %s "$tmp/html/img.qcow2")

start_nginx_and_proxy img.qcow2 on

# Build the CLI once (the launcher publishes Release on first use), outside any timing.
"$repo/urldisk" --help >/dev/null
mkdir -p "$here/results"
exec > >(tee "$here/results/qcow2-convert.txt") 2>&1

declare -A cmdline=(
  [urldisk]="$repo/urldisk convert -f qcow2 -O raw"
  [qemu-img]="qemu-img convert -f qcow2 -O raw"
  [qemu-img-m1]="qemu-img convert -m 1 -f qcow2 -O raw"
)
# qemu-img with its default 8 coroutines hangs on loopback (QEMU 7.2's curl driver); -m 1 (one request at a
# time) does not, so it is timed too, direct only (through the proxy it is serial round trips, ~1 min a run).
tools=(urldisk qemu-img qemu-img-m1)
rtt_tools=(urldisk qemu-img)

results="$tmp/results.tsv"   # net tool run seconds rss_kib requests bytes status cpu_seconds
: > "$results"
log_lines() { if [[ -f $tmp/access.log ]]; then wc -l < "$tmp/access.log"; else echo 0; fi; }
run_one() { # net url tool run
  local net=$1 url=$2 tool=$3 run=$4 out="$tmp/out.raw" status=ok
  rm -f "$out"
  sync
  local before; before=$(log_lines)
  # shellcheck disable=SC2086
  if ! /usr/bin/time -v -o "$tmp/time.txt" timeout -k 5 "$limit" ${cmdline[$tool]} "$url" "$out" >"$tmp/tool.log" 2>&1; then
    status=failed
    grep -q "non-zero status 124" "$tmp/time.txt" && status=timeout
  fi
  sleep 0.2   # nginx writes a log line when the response ends; let the last ones land
  local secs rss reqs bytes
  secs=$(awk -F': ' '/Elapsed \(wall clock\)/{n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$tmp/time.txt")
  rss=$(awk -F': ' '/Maximum resident set size/{print $2}' "$tmp/time.txt")
  local cpu; cpu=$(awk -F': ' '/User time \(seconds\)|System time \(seconds\)/{s+=$2} END{printf "%.2f", s}' "$tmp/time.txt")
  read -r reqs bytes < <(tail -n +"$((before + 1))" "$tmp/access.log" | awk '$1=="GET"||$1=="HEAD"{n++; b+=$3} END{printf "%d %d\n", n, b}')
  if [[ $status == ok ]] && ! cmp -s "$out" "$tmp/disk.raw"; then status=wrong-bytes; fi
  [[ $status != ok ]] && tail -3 "$tmp/tool.log" | sed 's/^/      | /'
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$net" "$tool" "$run" "$secs" "$rss" "$reqs" "$bytes" "$status" "$cpu" >> "$results"
  printf '  %-8s run %d  %-11s %8.2f s  CPU %5.2f s  %5d MiB RSS  %6d req  %8.1f MiB  %s\n' "$net" "$run" "$tool" "$secs" "$cpu" "$((rss / 1024))" "$reqs" "$(echo "$bytes" | awk '{print $1/1048576}')" "$status"
}

echo "date: $(date -u '+%F %T UTC'); $(nproc) cores; load average at start: $(cut -d' ' -f1-3 /proc/loadavg); commit $(git -C "$repo" rev-parse --short HEAD)"
echo "image: $size_mib MiB raw (1/2 text-like, 1/4 random, 1/4 zero) -> zlib qcow2 of $((qcow2_bytes / 1048576)) MiB (64 KiB clusters)"
echo "nginx :$port; +20 ms RTT proxy :$proxy_port; $runs runs, tools alternating, timeout ${limit}s per run"
for tool in "${tools[@]}"; do echo "  $tool: ${cmdline[$tool]} URL out.raw"; done
for run in $(seq "$runs"); do
  for tool in "${tools[@]}"; do run_one direct "http://127.0.0.1:$port/img.qcow2" "$tool" "$run"; done
  for tool in "${rtt_tools[@]}"; do run_one rtt20ms "http://127.0.0.1:$proxy_port/img.qcow2" "$tool" "$run"; done
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"

echo
python3 - "$results" "$size_mib" <<'PY'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
mib = int(sys.argv[2])
def stats(net, tool):
    ok = [r for r in rows if r[0] == net and r[1] == tool and r[7] == "ok"]
    bad = [r[7] for r in rows if r[0] == net and r[1] == tool and r[7] != "ok"]
    if not ok:
        return None, bad
    med = lambda i: statistics.median(float(r[i]) for r in ok)
    return dict(secs=med(3), rss=max(int(r[4]) for r in ok) / 1024, reqs=med(5), mib=med(6) / 1048576, cpu=med(8)), bad
print("| tool | network | median s | virtual MiB/s | vs qemu-img | CPU s (user+sys) | CPU s/GiB | CPU vs qemu-img -m 1 | requests | MiB moved | max RSS MiB | failed runs |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
m1 = {net: stats(net, "qemu-img-m1")[0] for net in ("direct", "rtt20ms")}
for net in ("direct", "rtt20ms"):
    base, _ = stats(net, "qemu-img")
    if base is None:
        base, _ = stats(net, "qemu-img-m1")
    for tool in ("urldisk", "qemu-img", "qemu-img-m1"):
        s, bad = stats(net, tool)
        if s is None:
            if not bad:
                continue
            print(f"| {tool} | {net} | - | - | - | - | - | - | - | - | - | {', '.join(bad)} |")
            continue
        ratio = f"{s['secs'] / base['secs']:.2f}x" if base else "-"
        base_cpu = m1[net] or m1["direct"]
        cpu_ratio = f"{s['cpu'] / base_cpu['cpu']:.2f}x" if base_cpu else "-"
        print(f"| {tool} | {net} | {s['secs']:.2f} | {mib / s['secs']:.0f} | {ratio} | {s['cpu']:.2f} | {s['cpu'] * 1024 / mib:.2f} | {cpu_ratio} | {s['reqs']:.0f} | {s['mib']:.1f} | {s['rss']:.0f} | {', '.join(bad) or '-'} |")
print("(medians over successful runs; ratio = median time / qemu-img's median time (qemu-img -m 1's where every default run hung), lower is faster;")
print(" CPU = user+sys, its ratio against qemu-img -m 1 on the same network (direct where -m 1 is not run); requests = GET+HEAD lines in nginx's log)")
PY
