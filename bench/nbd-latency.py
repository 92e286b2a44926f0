#!/usr/bin/python3
# Per-request latency of an NBD server: N sequential reads of SIZE bytes, one in flight (python3 libnbd).
# Prints "median_us mean_us p90_us". Usage: nbd-latency.py URI [N] [SIZE]
import sys, time, statistics
import nbd

uri = sys.argv[1]
n = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
size = int(sys.argv[3]) if len(sys.argv) > 3 else 2048
h = nbd.NBD()
h.connect_uri(uri)
length = h.get_size()
span = max(size, min(length, 64 << 20) - size)
for i in range(50):  # warm-up
    h.pread(size, (i * size) % span)
times = []
for i in range(n):
    off = (i * size) % span
    t = time.perf_counter_ns()
    h.pread(size, off)
    times.append(time.perf_counter_ns() - t)
h.shutdown()
times.sort()
print(f"{statistics.median(times) / 1000:.1f} {statistics.fmean(times) / 1000:.1f} {times[int(len(times) * 0.9)] / 1000:.1f}")
