#!/usr/bin/env bash
# urldisk mount against nbdfuse over urldisk serve: the same http image (random, every 4th 8 MiB a hole) read as a
# local file through FUSE, two ways, alternating, medians of RUNS, each run on a fresh mount (a cold page cache):
#   urldisk-mount   urldisk mount URL FILE                      (our /dev/fuse server)
#   nbdfuse         urldisk serve --socket S URL; nbdfuse -r DIR nbd+unix:///?socket=S   (libnbd's FUSE client)
# (1) sequential: dd bs=1M of the whole file to /dev/null (MiB/s)
# (2) random: 2000 random 4 KiB-aligned preads of 4 KiB, one at a time (reads/s), buffered as programs read
# (3) boot (SKIP_BOOT=1 leaves it out): qemu-system-x86_64 (TCG) boots the integration tests' ISO as a raw CD-ROM
#     from the local file (qemu -cdrom) and from a file urldisk mounts from a warm copy-on-read overlay over its URL;
#     then cold: a fresh overlay over the URL through bench/delay-proxy.py (+20 ms RTT) each run, beside QEMU's
#     curl driver reading that URL
# Usage: bench/fuse.sh [SIZE_MIB] [RUNS] > bench/results/fuse.txt   (default 256 MiB, 3 runs). Runs as root.
# Needs: nginx-light curl python3 libnbd-bin (nbdfuse) fuse3 qemu-system-x86 qemu-utils, and for the ISO
# grub-pc-bin grub-common xorriso mtools busybox-static cpio (tests/.../Nbd/Boot/build-boot-iso.sh; cached).
set -euo pipefail
size_mib=${1:-256}
runs=${2:-3}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
tmp=$(mktemp -d /tmp/urldisk-bench-fuse-XXXXXX)
pids=()
job=""
job2=""
mounted() { grep -q " $1 " /proc/self/mountinfo; }
cleanup() {
  for m in "$tmp/a.raw" "$tmp/n" "$tmp/boot.raw" "$tmp/cold.raw"; do mounted "$m" && umount -l "$m" || true; done
  for p in $job $job2 "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

source "$here/lib.sh"
require_tools nginx nbdfuse curl python3 timeout
"$repo/urldisk" --version >/dev/null
mkdir -p "$tmp/html" "$tmp/tmp" "$tmp/n"
write_striped_image "$tmp/html/img.raw" "$size_mib"
start_nginx_and_proxy img.raw off
url="http://127.0.0.1:$port/img.raw"

# wait_for PATH: until PATH has the image's size (the mount is live).
wait_for() {
  local _
  for _ in $(seq 300); do
    [[ -e $1 && $(stat -c %s "$1" 2>/dev/null || echo 0) == $((size_mib << 20)) ]] && return 0
    sleep 0.05
  done
  echo "mount at $1 did not come up" >&2
  exit 1
}

up() {
  case $1 in
    urldisk-mount)
      : > "$tmp/a.raw"
      "$repo/urldisk" mount "$url" "$tmp/a.raw" 2>>"$tmp/mount.log" & job=$!
      wait_for "$tmp/a.raw"; file="$tmp/a.raw" ;;
    nbdfuse)
      rm -f "$tmp/s"
      "$repo/urldisk" serve --socket "$tmp/s" --read-only --shared 0 --persistent "$url" 2>>"$tmp/serve.log" & job2=$!
      for _ in $(seq 100); do [[ -S $tmp/s ]] && break; sleep 0.05; done
      nbdfuse -r "$tmp/n" "nbd+unix:///?socket=$tmp/s" 2>>"$tmp/nbdfuse.log" & job=$!
      wait_for "$tmp/n/nbd"; file="$tmp/n/nbd" ;;
  esac
}

down() {
  case $1 in
    urldisk-mount) "$repo/urldisk" unmount "$tmp/a.raw"; wait "$job" || true ;;
    nbdfuse) fusermount3 -u "$tmp/n"; wait "$job" || true; kill "$job2"; wait "$job2" || true ;;
  esac
  job=""; job2=""
}

sequential() { # prints MiB/s
  local t0 t1
  t0=$(date +%s.%N); timeout 300 dd if="$file" of=/dev/null bs=1M status=none; t1=$(date +%s.%N)
  python3 -c "print(f'{$size_mib / ($t1 - $t0):.0f}')"
}

random_reads() { # prints reads/s
  timeout 300 python3 - "$file" <<'PY'
import os, random, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY)
blocks = os.fstat(fd).st_size // 4096
rng = random.Random(7)
offsets = [rng.randrange(blocks) * 4096 for _ in range(2000)]
t0 = time.perf_counter()
for o in offsets:
    os.pread(fd, 4096, o)
print(f"{len(offsets) / (time.perf_counter() - t0):.0f}")
PY
}

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

ways=(urldisk-mount nbdfuse)
declare -A seq rnd
for run in $(seq "$runs"); do
  for way in "${ways[@]}"; do
    up "$way"; seq[$way]+="$(sequential) "; down "$way"
    up "$way"; rnd[$way]+="$(random_reads) "; down "$way"
  done
done

echo "bench/fuse.sh: ${size_mib} MiB http image on loopback nginx, $runs runs, medians (each run a fresh mount), $(date -u +%F)"
printf '%-16s %18s %22s   %s\n' way "sequential MiB/s" "random 4 KiB reads/s" "all runs (seq | random)"
for way in "${ways[@]}"; do
  # shellcheck disable=SC2086 # the lists are meant to split
  printf '%-16s %18s %22s   %s| %s\n' "$way" "$(median ${seq[$way]})" "$(median ${rnd[$way]})" "${seq[$way]}" "${rnd[$way]}"
done

[[ ${SKIP_BOOT:-} == 1 ]] && exit 0
marker=URLDISK-NBD-BOOT-OK
iso=$(bash "$repo/tests/UrlDisk.IntegrationTests/Nbd/Boot/build-boot-iso.sh" "$marker" 2>"$tmp/iso-build.log") \
  || { cat "$tmp/iso-build.log" >&2; exit 1; }
cp "$iso" "$tmp/html/boot.iso"
"$repo/urldisk" create -f qcow2 -F raw -b "http://127.0.0.1:$port/boot.iso" "$tmp/boot.qcow2" >/dev/null
boot() { # boot FILE: seconds until QEMU powers off; fails without the marker
  local t0 t1
  t0=$(date +%s.%N)
  timeout 300 qemu-system-x86_64 -machine accel=tcg -nographic -m 512 -no-reboot -nodefaults -serial stdio \
    -drive "media=cdrom,readonly=on,format=raw,file=$1" -boot d > "$tmp/serial.txt" 2>&1
  t1=$(date +%s.%N)
  grep -q "$marker" "$tmp/serial.txt" || { echo "no boot marker from $1" >&2; tail -5 "$tmp/serial.txt" >&2; exit 1; }
  python3 -c "print(f'{$t1 - $t0:.2f}')"
}
: > "$tmp/boot.raw"
"$repo/urldisk" mount --copy-on-read "$tmp/boot.qcow2" "$tmp/boot.raw" 2>>"$tmp/mount.log" & job=$!
for _ in $(seq 200); do mounted "$tmp/boot.raw" && break; sleep 0.05; done
boot "$tmp/boot.raw" >/dev/null # fills the overlay: later boots are warm
local_times="" mount_times=""
for run in $(seq "$runs"); do
  local_times+="$(boot "$tmp/html/boot.iso") "
  mount_times+="$(boot "$tmp/boot.raw") "
done
"$repo/urldisk" unmount "$tmp/boot.raw"; wait "$job" || true; job=""
# shellcheck disable=SC2086
echo "boot of the fixture ISO (TCG), median s: local -cdrom $(median $local_times) [$local_times], urldisk mount of a warm copy-on-read overlay $(median $mount_times) [$mount_times]"

# Cold: every run a fresh copy-on-read overlay over the URL through the +20 ms RTT proxy, against QEMU's own
# curl driver reading the same URL through the same proxy.
cold_times="" curl_times=""
cold_url="http://127.0.0.1:$proxy_port/boot.iso"
for run in $(seq "$runs"); do
  rm -f "$tmp/cold.qcow2"; : > "$tmp/cold.raw"
  "$repo/urldisk" create -f qcow2 -F raw -b "$cold_url" "$tmp/cold.qcow2" >/dev/null
  "$repo/urldisk" mount --copy-on-read "$tmp/cold.qcow2" "$tmp/cold.raw" 2>>"$tmp/mount.log" & job=$!
  for _ in $(seq 200); do mounted "$tmp/cold.raw" && break; sleep 0.05; done
  cold_times+="$(boot "$tmp/cold.raw") "
  "$repo/urldisk" unmount "$tmp/cold.raw"; wait "$job" || true; job=""
  curl_times+="$(boot "$cold_url") "
done
# shellcheck disable=SC2086
echo "cold boot through +20 ms RTT, median s: urldisk mount of a fresh copy-on-read overlay $(median $cold_times) [$cold_times], QEMU's curl driver $(median $curl_times) [$curl_times]"
