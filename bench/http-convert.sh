#!/usr/bin/env bash
# Whole-image copy over HTTP from a local nginx: urldisk convert vs qemu-img convert (QEMU's curl
# driver), nbdkit's curl plugin + nbdcopy, and curl -o. Runs alternate between tools; prints every
# run, then medians of wall time, CPU seconds (user+sys, children included) and CPU seconds per GiB,
# the ratios to the fastest of qemu-img / qemu-img -m 1 / nbdkit+nbdcopy (time) and to qemu-img -m 1
# (CPU), and peak memory (max RSS of the largest process), both direct on loopback and through
# bench/delay-proxy.py adding 20 ms of round-trip time. The output is also written to
# bench/results/http-convert.txt.
# Usage: bench/http-convert.sh [SIZE_MIB] [RUNS]   (default 512 MiB, 3 runs)
# qemu-img (QEMU 7.2, Debian 12) with its default 8 coroutines hangs now and then on http sources; a run
# over 60 s counts as "hung" and -m 1 (one request at a time, never seen to hang) is timed as well.
# Needs: nginx-light qemu-utils qemu-block-extra nbdkit libnbd-bin curl python3 time (scripts/test.sh installs them).
set -euo pipefail
size_mib=${1:-512}
runs=${2:-3}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
tmp=$(mktemp -d /tmp/urldisk-bench-http-XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait "${pids[@]}" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

source "$here/lib.sh"
require_tools nginx qemu-img nbdkit nbdcopy curl /usr/bin/time
nbdkit curl --version >/dev/null 2>&1 || { echo "nbdkit's curl plugin is missing (Debian package nbdkit)" >&2; exit 1; }

# The image: random data with every fourth 8 MiB region zero (left as holes in the served file).
mkdir -p "$tmp/html" "$tmp/tmp"
write_striped_image "$tmp/html/disk.img" "$size_mib"

start_nginx_and_proxy disk.img off

# Build the CLI once (the launcher publishes Release on first use), outside any timing.
"$repo/urldisk" --help >/dev/null
mkdir -p "$here/results"
exec > >(tee "$here/results/http-convert.txt") 2>&1

# Each tool: a function taking URL and output file.
t_urldisk()  { "$repo/urldisk" convert -O raw "$1" "$2"; }
t_qemu()     { timeout 60 qemu-img convert -f raw -O raw "$1" "$2"; }
t_qemu_m1()  { timeout 120 qemu-img convert -m 1 -f raw -O raw "$1" "$2"; }
t_nbdkit()   { nbdkit -U - curl "$1" --run "nbdcopy \"\$uri\" $2"; }
t_curl()     { curl -sS -o "$2" "$1"; }
tools=(t_urldisk t_qemu t_qemu_m1 t_nbdkit t_curl)
export repo
export -f "${tools[@]}"
declare -A label=(
  [t_urldisk]="urldisk convert -O raw"
  [t_qemu]="qemu-img convert -O raw"
  [t_qemu_m1]="qemu-img convert -m 1 -O raw"
  [t_nbdkit]="nbdkit curl + nbdcopy"
  [t_curl]="curl -o"
)

results="$tmp/results.tsv"   # net tool run seconds user sys rss_kib status
: > "$results"
run_one() { # net url tool run
  local net=$1 url=$2 tool=$3 run=$4 out="$tmp/out.img" status=ok
  rm -f "$out"
  sync
  if ! /usr/bin/time -o "$tmp/time.txt" -f "%e %U %S %M" bash -c "$tool \"\$0\" \"\$1\"" "$url" "$out" >"$tmp/tool.log" 2>&1; then
    status=failed
    grep -q "Command exited with non-zero status 124" "$tmp/time.txt" && status=hung
  fi
  if [[ $status == ok ]] && ! cmp -s "$out" "$tmp/html/disk.img"; then status=wrong-bytes; fi
  local secs user sys rss
  read -r secs user sys rss < <(tail -1 "$tmp/time.txt")
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$net" "$tool" "$run" "$secs" "$user" "$sys" "$rss" "$status" >> "$results"
  printf '  %-8s run %d  %-32s %8.2f s  CPU %5.2f s (user %5.2f, sys %5.2f)  %5d MiB RSS  %s\n' \
    "$net" "$run" "${label[$tool]}" "$secs" "$(echo "$user $sys" | awk '{print $1+$2}')" "$user" "$sys" "$((rss / 1024))" "$status"
}

echo "date: $(date -u '+%F %T UTC'); $(nproc) cores; load average at start: $(cut -d' ' -f1-3 /proc/loadavg); commit $(git -C "$repo" rev-parse --short HEAD)"
echo "image: $size_mib MiB (random, every 4th 8 MiB region zero); nginx :$port; +20 ms RTT proxy :$proxy_port; $runs runs, tools alternating"
for run in $(seq "$runs"); do
  for tool in "${tools[@]}"; do run_one direct "http://127.0.0.1:$port/disk.img" "$tool" "$run"; done
  for tool in "${tools[@]}"; do run_one rtt20ms "http://127.0.0.1:$proxy_port/disk.img" "$tool" "$run"; done
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"

echo
python3 - "$results" "$size_mib" <<'PY'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
mib = int(sys.argv[2])
labels = {"t_urldisk": "urldisk convert -O raw", "t_qemu": "qemu-img convert -O raw", "t_qemu_m1": "qemu-img convert -m 1 -O raw",
          "t_nbdkit": "nbdkit curl + nbdcopy", "t_curl": "curl -o"}
def stats(net, tool):
    ok = [r for r in rows if r[0] == net and r[1] == tool and r[7] == "ok"]
    bad = [r[7] for r in rows if r[0] == net and r[1] == tool and r[7] != "ok"]
    if not ok:
        return None, bad
    return dict(secs=statistics.median(float(r[3]) for r in ok),
                cpu=statistics.median(float(r[4]) + float(r[5]) for r in ok),
                rss=max(int(r[6]) for r in ok) / 1024), bad
print("| tool | network | median s | MiB/s | vs fastest | CPU s (user+sys) | CPU s/GiB | CPU vs qemu-img -m 1 | max RSS MiB | failed runs |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---|")
for net in ("direct", "rtt20ms"):
    rivals = [s for s in (stats(net, t)[0] for t in ("t_qemu", "t_qemu_m1", "t_nbdkit")) if s]
    fastest = min((s["secs"] for s in rivals), default=None)
    m1, _ = stats(net, "t_qemu_m1")
    for tool in labels:
        s, bad = stats(net, tool)
        if s is None:
            print(f"| {labels[tool]} | {net} | - | - | - | - | - | - | - | {', '.join(bad)} |")
            continue
        ratio = f"{s['secs'] / fastest:.2f}x" if fastest else "-"
        cpu_ratio = f"{s['cpu'] / m1['cpu']:.2f}x" if m1 else "-"
        print(f"| {labels[tool]} | {net} | {s['secs']:.2f} | {mib / s['secs']:.0f} | {ratio} | {s['cpu']:.2f} | {s['cpu'] * 1024 / mib:.2f} | {cpu_ratio} | {s['rss']:.0f} | {', '.join(bad) or '-'} |")
print("(medians over successful runs; vs fastest = median time / the fastest median of qemu-img, qemu-img -m 1 and nbdkit curl + nbdcopy")
print(" on that network; CPU = user+sys of the whole command, children included; lower is better)")
PY
