#!/usr/bin/env bash
# urldisk serve against qemu-nbd, nbdkit and QEMU's own drivers, in one run, tools alternating, medians of RUNS:
# (1) boot: qemu-system-x86_64 (TCG) boots the integration tests' ISO (GRUB + Debian cloud kernel + busybox /init
#     that prints a marker on the serial port and powers off; ~8000 sequential 2 KiB reads) five ways:
#       local        qemu -cdrom: the ISO as a local file, no NBD
#       nbdkit-file  nbdkit file ISO
#       urldisk-warm urldisk serve --copy-on-read of a qcow2 overlay over the ISO's URL, already filled by a boot
#       qemu-curl    QEMU's curl driver reading the URL through a +20 ms RTT proxy
#       urldisk-cold urldisk serve --copy-on-read of a fresh overlay over the URL through the +20 ms RTT proxy
#       urldisk-prefetch  urldisk serve --prefetch-profile of the URL through the +20 ms RTT proxy, with a boot profile
#                    recorded (--record-profile) on one earlier boot through the same proxy (not timed)
#     BOOT_WAYS="local urldisk-prefetch" runs only those (default: all six).
#     Timed until QEMU exits (it powers off right after the marker); a run counts only if the marker was printed.
# (2) latency: 2000 sequential 2 KiB reads, one in flight (bench/nbd-latency.py, python3 libnbd), from urldisk serve,
#     nbdkit file and qemu-nbd of the same local file; idle, then with two busy loops on the two cores.
# (3) start-up: milliseconds from exec until the server's socket accepts a connection.
# (4) nbdcopy -C 4 of a SIZE_MIB MiB http export (random, every 4th 8 MiB zero) via urldisk serve, qemu-nbd (QEMU's
#     curl driver) and nbdkit curl: time, requests, bytes, and the server's peak RSS (/usr/bin/time -v).
# Requests and bytes are counted from nginx's access log (GET/HEAD lines, $body_bytes_sent) per run.
# Usage: bench/nbd.sh [SIZE_MIB] [RUNS] > bench/results/nbd.txt   (default 256 MiB, 3 runs; ~5 min on a quiet machine)
#   SKIP_BOOT=1, SKIP_LATENCY=1, SKIP_COPY=1 leave parts out; COPY_RTT=1 also copies through the +20 ms proxy.
# Needs: nginx-light qemu-utils qemu-block-extra qemu-system-x86 nbdkit libnbd-bin python3-libnbd curl python3 time,
# and for the ISO grub-pc-bin grub-common xorriso mtools busybox-static cpio (tests/.../Nbd/Boot/build-boot-iso.sh; cached).
set -euo pipefail
size_mib=${1:-256}
runs=${2:-3}
copy_limit=${COPY_TIMEOUT:-60}
boot_limit=${BOOT_TIMEOUT:-120}
marker=URLDISK-NBD-BOOT-OK   # the marker tests/UrlDisk.IntegrationTests/Nbd/Boot/NbdBootTests.cs builds its ISO with
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
tmp=$(mktemp -d /tmp/urldisk-bench-nbd-XXXXXX)
pids=()
busy=()
server_job=""
cleanup() {
  [[ -n $server_job ]] && kill "$server_job" 2>/dev/null || true
  for p in "${busy[@]}" "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

source "$here/lib.sh"
require_tools nginx qemu-nbd qemu-system-x86_64 nbdkit nbdcopy curl python3 timeout /usr/bin/time /usr/bin/python3
/usr/bin/python3 -c 'import nbd' 2>/dev/null || { echo "python3-libnbd is missing (import nbd)" >&2; exit 1; }
nbdkit curl --version >/dev/null 2>&1 || { echo "nbdkit's curl plugin is missing (Debian package nbdkit)" >&2; exit 1; }

mkdir -p "$tmp/html" "$tmp/tmp"
write_striped_image "$tmp/html/img.raw" "$size_mib"
iso=$(bash "$repo/tests/UrlDisk.IntegrationTests/Nbd/Boot/build-boot-iso.sh" "$marker" 2>"$tmp/iso-build.log") \
  || { cat "$tmp/iso-build.log" >&2; exit 1; }
cp "$iso" "$tmp/html/boot.iso"
iso="$tmp/html/boot.iso"
start_nginx_and_proxy img.raw on

# Build the CLI once (the launcher publishes Release on first use), outside any timing.
urldisk="$repo/urldisk"
"$urldisk" --help >/dev/null

sock="$tmp/nbd.sock"
results="$tmp/results.tsv"   # part name run seconds server_rss_kib requests bytes status
: > "$results"
log_lines() { if [[ -f $tmp/access.log ]]; then wc -l < "$tmp/access.log"; else echo 0; fi; }
rss_of() { awk -F': ' '/Maximum resident set size/{print $2}' "$1" 2>/dev/null || echo 0; }
secs_of() { awk -F': ' '/Elapsed \(wall clock\)/{n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$1"; }
record() { # part name run secs rss log_before status
  local reqs bytes
  sleep 0.2   # nginx writes a log line when a response ends; let the last ones land
  read -r reqs bytes < <(tail -n +"$(($6 + 1))" "$tmp/access.log" | awk '$1=="GET"||$1=="HEAD"{n++; b+=$3} END{printf "%d %d\n", n, b}')
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "${5:-0}" "$reqs" "$bytes" "$7" >> "$results"
  printf '  %-5s %-13s run %d %8.2f s  server %4s MiB RSS  %6d req  %7.1f MiB  %s\n' "$1" "$2" "$3" "$4" \
    "$(( ${5:-0} / 1024 ))" "$reqs" "$(awk -v b="$bytes" 'BEGIN{print b/1048576}')" "$7" >&2
}

# start_server KIND ARG: starts an NBD server on $sock in the background under /usr/bin/time; returns once it listens.
# Readiness is the socket file, not a probe connection: urldisk serve and qemu-nbd end after their first client leaves.
start_server() {
  local kind=$1 arg=$2
  rm -f "$sock"
  case $kind in
    urldisk)      set -- "$urldisk" serve --socket "$sock" --read-only --shared 4 "$arg" ;;
    urldisk-cor)  set -- "$urldisk" serve --socket "$sock" --copy-on-read "$arg" ;;
    urldisk-rec)  set -- "$urldisk" serve --socket "$sock" --read-only --record-profile "$tmp/boot.profile" "$arg" ;;
    urldisk-pf)   set -- "$urldisk" serve --socket "$sock" --read-only --prefetch-profile "$tmp/boot.profile" "$arg" ;;
    qemu-nbd)     set -- qemu-nbd -r -e 4 -k "$sock" -f raw "$arg" ;;
    qemu-nbd-url) set -- qemu-nbd -r -e 4 -k "$sock" -f raw "json:{\"file.driver\":\"http\",\"file.url\":\"$arg\"}" ;;
    nbdkit)       set -- nbdkit -f -U "$sock" file "$arg" ;;
    nbdkit-url)   set -- nbdkit -f -U "$sock" curl url="$arg" ;;
  esac
  /usr/bin/time -v -o "$tmp/server-time.txt" "$@" >"$tmp/server.log" 2>&1 &
  server_job=$!
  for _ in $(seq 600); do
    [[ -S $sock ]] && return 0
    kill -0 "$server_job" 2>/dev/null || break
    sleep 0.02
  done
  echo "      | $kind did not start listening:" >&2; tail -3 "$tmp/server.log" | sed 's/^/      | /' >&2
  return 1
}
# /usr/bin/time forwards no signal: kill the server itself (the child of time), then time exits and writes its report.
kill_server_child() { pkill -TERM -P "$server_job" 2>/dev/null || true; }
stop_server() {
  [[ -z $server_job ]] && return
  kill_server_child
  for _ in $(seq 100); do kill -0 "$server_job" 2>/dev/null || break; sleep 0.05; done
  pkill -KILL -P "$server_job" 2>/dev/null || true
  wait "$server_job" 2>/dev/null || true
  server_job=""
}

echo "date: $(date -u '+%F %T UTC'); $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)); $(. /etc/os-release; echo "$PRETTY_NAME"); load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "$(qemu-system-x86_64 --version | head -1); nbdkit $(nbdkit --version | cut -d' ' -f2); $runs runs, tools alternating; medians"

# ---------------------------------------------------------------------------------------------------------------- (1)
boot_one() { # name run drive
  local name=$1 run=$2 drive=$3 status=ok before secs rss=0
  before=${log_before:-$(log_lines)}; log_before=""   # log_before: a server that fetches from its start (prefetch)
  if ! /usr/bin/time -v -o "$tmp/client-time.txt" timeout -k 5 "$boot_limit" qemu-system-x86_64 -machine accel=tcg -nographic \
         -nodefaults -serial stdio -m 512 -no-reboot -drive "media=cdrom,readonly=on,format=raw,file=$drive" -boot d >"$tmp/serial.log" 2>&1; then
    status=failed; grep -q "non-zero status 124" "$tmp/client-time.txt" && status=timeout
  fi
  if [[ $status == ok ]] && ! grep -q "$marker" "$tmp/serial.log"; then status=no-marker; fi
  [[ $status != ok ]] && tail -3 "$tmp/serial.log" | sed 's/^/      | /' >&2
  secs=$(secs_of "$tmp/client-time.txt")
  if [[ -n $server_job ]]; then stop_server; rss=$(rss_of "$tmp/server-time.txt"); fi
  record boot "$name" "$run" "$secs" "$rss" "$before" "$status"
}
overlay_over() { # path url: a fresh qcow2 overlay whose backing file is the URL (raw)
  rm -f "$1"; "$urldisk" create -f qcow2 -F raw -b "$2" "$1" >/dev/null
}
boot_ways=" ${BOOT_WAYS:-local nbdkit-file urldisk-warm qemu-curl urldisk-cold urldisk-prefetch} "
want() { [[ $boot_ways == *" $1 "* ]]; }
if [[ ${SKIP_BOOT:-0} != 1 ]]; then
  echo "(1) boot of the $(( $(stat -c %s "$iso") / 1048576 )) MiB ISO (qemu-system-x86_64 -machine accel=tcg -m 512, cdrom)" >&2
  slow_url="http://127.0.0.1:$proxy_port/boot.iso"
  # The warm overlay is filled once by a boot through loopback (not timed), then served as it is.
  if want urldisk-warm; then
    overlay_over "$tmp/warm.qcow2" "http://127.0.0.1:$port/boot.iso"
    start_server urldisk-cor "$tmp/warm.qcow2" && boot_one fill 0 "nbd+unix:///?socket=$sock"
  fi
  # The profile is recorded once, on a boot through the same proxy URL (a profile is bound to the URL and version).
  if want urldisk-prefetch; then
    log_before=$(log_lines); start_server urldisk-rec "$slow_url" && boot_one record 0 "nbd+unix:///?socket=$sock"
    grep -h "recorded boot profile" "$tmp/server.log" | sed 's/^/      | /' >&2 || true
    awk '/recorded boot profile/{print $(NF-1)}' "$tmp/server.log" > "$tmp/profile-bytes"
  fi
  for run in $(seq "$runs"); do
    want local && boot_one local "$run" "$iso"
    want nbdkit-file && start_server nbdkit "$iso" && boot_one nbdkit-file "$run" "nbd+unix:///?socket=$sock"
    want urldisk-warm && start_server urldisk-cor "$tmp/warm.qcow2" && boot_one urldisk-warm "$run" "nbd+unix:///?socket=$sock"
    want qemu-curl && boot_one qemu-curl "$run" "$slow_url"
    if want urldisk-cold; then
      overlay_over "$tmp/cold.qcow2" "$slow_url"
      start_server urldisk-cor "$tmp/cold.qcow2" && boot_one urldisk-cold "$run" "nbd+unix:///?socket=$sock"
    fi
    if want urldisk-prefetch && log_before=$(log_lines) && start_server urldisk-pf "$slow_url"; then
      boot_one urldisk-prefetch "$run" "nbd+unix:///?socket=$sock"
      grep -h "prefetch:" "$tmp/server.log" | sed 's/^/      | /' >&2 || true
    fi
  done
fi

# ---------------------------------------------------------------------------------------------------------------- (2)
latency_one() { # mode kind file run
  local out
  if ! start_server "$2" "$3"; then stop_server; return; fi
  out=$(/usr/bin/python3 "$here/nbd-latency.py" "nbd+unix:///?socket=$sock" 2000 2048 2>"$tmp/probe.err") || out="- - -"
  stop_server
  printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$4" "$out" >> "$tmp/latency.tsv"
  printf '  lat   %-9s %-8s run %d  median/mean/p90 us: %s\n' "$1" "$2" "$4" "$out" >&2
}
if [[ ${SKIP_LATENCY:-0} != 1 ]]; then
  echo "(2) latency: 2000 sequential 2 KiB reads of the local ISO, one in flight" >&2
  : > "$tmp/latency.tsv"
  for mode in idle contended; do
    if [[ $mode == contended ]]; then
      for _ in 1 2; do sh -c 'while :; do :; done' & busy+=($!); done
    fi
    for run in $(seq "$runs"); do
      latency_one "$mode" urldisk "$iso" "$run"
      latency_one "$mode" nbdkit "$iso" "$run"
      latency_one "$mode" qemu-nbd "$iso" "$run"
    done
    for p in "${busy[@]}"; do kill "$p" 2>/dev/null || true; done
    busy=()
  done

  echo "(3) start-up: ms from exec until the socket accepts" >&2
  : > "$tmp/start.tsv"
  for run in $(seq "$runs"); do
    for kind in urldisk nbdkit qemu-nbd; do
      rm -f "$sock"
      case $kind in
        urldisk)  set -- "$urldisk" serve --socket "$sock" -r --persistent "$iso" ;;
        nbdkit)   set -- nbdkit -f -U "$sock" file "$iso" ;;
        qemu-nbd) set -- qemu-nbd -r -t -k "$sock" -f raw "$iso" ;;
      esac
      ms=$(/usr/bin/python3 - "$sock" "$@" <<'PY'
import os, socket, subprocess, sys, time
path, cmd = sys.argv[1], sys.argv[2:]
t = time.perf_counter()
p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
ms = "-"
while time.perf_counter() - t < 30:
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect(path)
        ms = f"{(time.perf_counter() - t) * 1000:.0f}"
        break
    except OSError:
        time.sleep(0.001)
    finally:
        s.close()
p.kill(); p.wait()
print(ms)
PY
)
      printf '%s\t%s\t%s\n' "$kind" "$run" "$ms" >> "$tmp/start.tsv"
      printf '  start %-8s run %d  %s ms\n' "$kind" "$run" "$ms" >&2
    done
  done
fi

# ---------------------------------------------------------------------------------------------------------------- (4)
copy_one() { # name kind url run net
  local status=ok before secs
  before=$(log_lines)
  if ! start_server "$2" "$3"; then stop_server; record copy "$1" "$4" 0 0 "$before" no-start; return; fi
  if ! /usr/bin/time -v -o "$tmp/client-time.txt" timeout -k 5 "$copy_limit" nbdcopy -C 4 "nbd+unix:///?socket=$sock" null: >"$tmp/client.log" 2>&1; then
    status=failed; grep -q "non-zero status 124" "$tmp/client-time.txt" && status=timeout
    tail -3 "$tmp/client.log" | sed 's/^/      | /' >&2
  fi
  secs=$(secs_of "$tmp/client-time.txt")
  stop_server
  record copy "$1" "$4" "$secs" "$(rss_of "$tmp/server-time.txt")" "$before" "$status"
}
if [[ ${SKIP_COPY:-0} != 1 ]]; then
  echo "(4) nbdcopy -C 4 nbd+unix:///?socket=S null: of a $size_mib MiB http export" >&2
  nets=(direct); [[ ${COPY_RTT:-0} == 1 ]] && nets+=(rtt20ms)
  for run in $(seq "$runs"); do
    for net in "${nets[@]}"; do
      p=$port; [[ $net == rtt20ms ]] && p=$proxy_port
      url="http://127.0.0.1:$p/img.raw"
      copy_one "urldisk/$net" urldisk "$url" "$run"
      copy_one "qemu-nbd/$net" qemu-nbd-url "$url" "$run"
      copy_one "nbdkit/$net" nbdkit-url "$url" "$run"
    done
  done
fi
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"

echo
/usr/bin/python3 - "$results" "$tmp/latency.tsv" "$tmp/start.tsv" "$size_mib" "$tmp/profile-bytes" <<'PY'
import os, statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
mib = int(sys.argv[4])
def stats(part, name):
    sel = [r for r in rows if r[0] == part and r[1] == name]
    ok = [r for r in sel if r[7] == "ok"]
    bad = [r[7] for r in sel if r[7] != "ok"]
    if not ok:
        return None, bad
    med = lambda i: statistics.median(float(r[i]) for r in ok)
    return dict(secs=med(3), rss=max(int(r[4]) for r in ok) / 1024, reqs=med(5), mib=med(6) / 1048576), bad
if any(r[0] == "boot" for r in rows):
    print("(1) boot to marker + power-off")
    print("| how | median s | vs local | requests | MiB moved | server max RSS MiB | failed runs |")
    print("|---|---:|---:|---:|---:|---:|---|")
    base, _ = stats("boot", "local")
    for name, label in (("local", "local file (qemu -cdrom ISO)"), ("nbdkit-file", "nbdkit file ISO"),
                        ("urldisk-warm", "urldisk serve, warm copy-on-read overlay"),
                        ("qemu-curl", "QEMU curl driver, +20 ms RTT"), ("urldisk-cold", "urldisk serve, cold overlay, +20 ms RTT"),
                        ("urldisk-prefetch", "urldisk serve --prefetch-profile, +20 ms RTT")):
        s, bad = stats("boot", name)
        if s is None:
            print(f"| {label} | - | - | - | - | - | {', '.join(bad) or 'not run'} |")
            continue
        ratio = f"{s['secs'] / base['secs']:.2f}x" if base else "-"
        http = name in ("qemu-curl", "urldisk-cold", "urldisk-prefetch")
        reqs = f"{s['reqs']:.0f}" if http else "-"
        moved = f"{s['mib']:.1f}" if http else "-"
        rss = f"{s['rss']:.0f}" if s['rss'] else "-"
        print(f"| {label} | {s['secs']:.2f} | {ratio} | {reqs} | {moved} | {rss} | {', '.join(bad) or '-'} |")
    pf, _ = stats("boot", "urldisk-prefetch")
    read = open(sys.argv[5]).read().split() if os.path.exists(sys.argv[5]) else []
    if pf and base and read:
        boot_mib = int(read[0]) / 1048576
        print(f"\nprefetch: the recorded boot read {boot_mib:.1f} MiB (distinct bytes, from the profile); a prefetch boot moved "
              f"{pf['mib']:.1f} MiB ({pf['mib'] / boot_mib:.2f}x) and took local + {pf['secs'] - base['secs']:.2f} s")
    print()
lat = [l.rstrip("\n").split("\t") for l in open(sys.argv[2])] if os.path.exists(sys.argv[2]) else []
if lat:
    print("(2) latency of one 2 KiB NBD read (us; median over runs of each run's median / mean / p90)")
    print("| server | idle median | idle mean | idle p90 | contended median | contended mean | contended p90 |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for kind in ("urldisk", "nbdkit", "qemu-nbd"):
        cells = []
        for mode in ("idle", "contended"):
            vals = [r[3].split() for r in lat if r[0] == mode and r[1] == kind and r[3].split()[0] != "-"]
            for i in range(3):
                cells.append(f"{statistics.median(float(v[i]) for v in vals):.0f}" if vals else "-")
        print(f"| {kind} | " + " | ".join(cells) + " |")
    print()
start = [l.rstrip("\n").split("\t") for l in open(sys.argv[3])] if os.path.exists(sys.argv[3]) else []
if start:
    print("(3) start-up: ms from exec until the socket accepts (median)")
    print("| server | ms |")
    print("|---|---:|")
    for kind in ("urldisk", "nbdkit", "qemu-nbd"):
        vals = [float(r[2]) for r in start if r[0] == kind and r[2] != "-"]
        print(f"| {kind} | {statistics.median(vals):.0f} |" if vals else f"| {kind} | - |")
    print()
if any(r[0] == "copy" for r in rows):
    print(f"(4) nbdcopy -C 4 to null: of {mib} MiB over NBD from http")
    print("| server | median s | requests | MiB moved | server max RSS MiB | failed runs |")
    print("|---|---:|---:|---:|---:|---|")
    for name in sorted({r[1] for r in rows if r[0] == "copy"}, key=lambda n: (n.split("/")[1], n)):
        s, bad = stats("copy", name)
        if s is None:
            print(f"| {name} | - | - | - | - | {', '.join(bad)} |")
            continue
        print(f"| {name} | {s['secs']:.2f} ({mib / s['secs']:.0f} MiB/s) | {s['reqs']:.0f} | {s['mib']:.1f} | {s['rss']:.0f} | {', '.join(bad) or '-'} |")
    print()
print("(medians over successful runs; requests = GET+HEAD lines in nginx's log per run; RSS = peak of the server process)")
PY
