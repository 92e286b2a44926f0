#!/usr/bin/env bash
# Issue 8: start-up, as users start the tools (urldisk through the ./urldisk launcher):
#   (a) `./urldisk --version` against `qemu-img --version`: wall and CPU time of the process, and in runs of
#       their own under GNU time, its peak RSS;
#   (b) `./urldisk serve --socket S IMAGE` against `qemu-nbd -k S IMAGE`: time from exec until S accepts a
#       connection (polled every 0.2 ms), for a local raw file and for an http URL (local nginx; both
#       servers send their HEAD before listening), and the server's peak RSS (VmHWM) after that one connection.
# Each pair alternates (urldisk, QEMU, urldisk, …) after warm-up runs; medians with [min–max].
# Usage: bench/startup.sh [RUNS]   (default 20; writes bench/results/startup.txt)
# Needs: qemu-utils qemu-block-extra nginx-light curl python3 time, and the launcher's build (done first, untimed).
set -euo pipefail
runs=${1:-20}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
tmp=$(mktemp -d /tmp/urldisk-bench-startup-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

source "$here/lib.sh"
require_tools qemu-img qemu-nbd nginx curl python3 /usr/bin/time

mkdir -p "$tmp/html"
truncate -s 64M "$tmp/html/disk.raw"
start_nginx_and_proxy disk.raw off
url="http://127.0.0.1:$port/disk.raw"

# Build the CLI once (the launcher builds on first use), outside any timing; say which build it is.
"$repo/urldisk" --version >/dev/null
build=$(cat "$repo/.build/urldisk/.stamp" 2>/dev/null || true)
[[ -n $build ]] || build="ReadyToRun (JIT)" # launchers before the native build left an empty stamp

out="$here/results/startup.txt"
python3 - "$runs" "$repo/urldisk" "$tmp" "$url" "$build" <<'PY' | tee "$out"
import os, signal, socket, statistics, sys, time

runs, launcher, tmp, url, build = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
image = os.path.join(tmp, "html", "disk.raw")
quiet = [(os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0), (os.POSIX_SPAWN_OPEN, 2, "/dev/null", os.O_WRONLY, 0)]

def spawn(argv):
    return os.posix_spawnp(argv[0], argv, os.environ, file_actions=quiet)

def run_once(argv):
    """Wall seconds and CPU seconds of one whole run."""
    t0 = time.perf_counter()
    pid = spawn(argv)
    _, status, ru = os.wait4(pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{' '.join(argv)} failed ({status})")
    return wall, ru.ru_utime + ru.ru_stime

def rss_once(argv):
    """Peak RSS (MiB) of one run, from GNU time, which forks before exec: a child spawned straight from this
    script would start with this interpreter's pages counted in its peak."""
    rss = os.path.join(tmp, "rss")
    pid = spawn(["/usr/bin/time", "-f", "%M", "-o", rss] + argv)
    os.waitpid(pid, 0)
    return int(open(rss).read().split()[-1]) / 1024

def peak_rss(pid):
    """VmHWM of a running process, MiB (its own address space, since its exec)."""
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")

def serve_once(argv, sock):
    """Seconds from exec until the socket accepts a connection; the server's peak RSS (MiB) once stopped."""
    if os.path.exists(sock):
        os.unlink(sock)
    t0 = time.perf_counter()
    pid = spawn(argv)
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(sock)
            listening = time.perf_counter() - t0
            break
        except (FileNotFoundError, ConnectionRefusedError):
            pass
        finally:
            s.close()
        if os.waitpid(pid, os.WNOHANG)[0] != 0:
            sys.exit(f"{' '.join(argv)} exited before listening")
        if time.perf_counter() - t0 > 30:
            os.kill(pid, signal.SIGKILL)
            sys.exit(f"{' '.join(argv)} did not listen within 30 s")
        time.sleep(0.0002)
    peak = peak_rss(pid)
    stop(pid)
    return listening, peak

def stop(pid):
    """SIGTERM (again every 0.5 s: qemu-nbd 7.2 now and then misses one that comes right after a client), SIGKILL after 5 s."""
    for i in range(50):
        if i % 5 == 0:
            os.kill(pid, signal.SIGTERM if i < 45 else signal.SIGKILL)
        if os.waitpid(pid, os.WNOHANG)[0] != 0:
            return
        time.sleep(0.1)
    os.waitpid(pid, 0)

def pair(run_a, run_b, warmup=2):
    for _ in range(warmup):
        run_a(); run_b()
    a, b = [], []
    for _ in range(runs):
        a.append(run_a()); b.append(run_b())
    return a, b

def med(xs, scale=1.0, fmt="{:.0f}"):
    xs = [x * scale for x in xs]
    return f"{fmt.format(statistics.median(xs))} [{fmt.format(min(xs))}–{fmt.format(max(xs))}]"

rows = []
def row(what, a, b, scale, unit, fmt="{:.0f}", ratio=True):
    r = f"{statistics.median(a) / statistics.median(b):.2f}x" if ratio else ""
    rows.append((what, f"{med(a, scale, fmt)} {unit}", f"{med(b, scale, fmt)} {unit}", r))

version = [launcher, "--version"], ["qemu-img", "--version"]
a, b = pair(lambda: run_once(version[0]), lambda: run_once(version[1]))
row("--version: wall", [x[0] for x in a], [x[0] for x in b], 1000, "ms", "{:.1f}")
row("--version: cpu", [x[1] for x in a], [x[1] for x in b], 1000, "ms", "{:.1f}")
a, b = pair(lambda: rss_once(version[0]), lambda: rss_once(version[1]), warmup=1)
row("--version: peak RSS", a, b, 1, "MiB", "{:.1f}")

for name, ours, theirs in [
    ("file", [image], ["-f", "raw", image]),
    ("http", [url], ["-f", "raw", f'json:{{"file.driver":"http","file.url":"{url}"}}']),
]:
    s1, s2 = os.path.join(tmp, "u.sock"), os.path.join(tmp, "q.sock")
    a, b = pair(lambda: serve_once([launcher, "serve", "--socket", s1, "--persistent", "--read-only"] + ours, s1),
                lambda: serve_once(["qemu-nbd", "-k", s2, "--persistent", "--read-only"] + theirs, s2))
    row(f"serve --socket ({name}): exec to listening", [x[0] for x in a], [x[0] for x in b], 1000, "ms", "{:.1f}")
    row(f"serve --socket ({name}): peak RSS", [x[1] for x in a], [x[1] for x in b], 1, "MiB", "{:.1f}")

load = open("/proc/loadavg").read().split()[:3]
print(f"urldisk start-up: ./urldisk ({build} build) vs QEMU {os.popen('qemu-img --version').readline().split()[2]}; "
      f"{runs} runs each, alternating, after 2 warm-up pairs; median [min–max]")
print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores, load average {' '.join(load)}")
print()
w = max(len(r[0]) for r in rows)
print(f"{'what':<{w}}  {'urldisk':<26}{'QEMU (qemu-img / qemu-nbd)':<30}ratio")
for what, ours, theirs, r in rows:
    print(f"{what:<{w}}  {ours:<26}{theirs:<30}{r}")
PY
