#!/usr/bin/env python3
"""Sums a cubecl profiling log (CUBECL_DEBUG_OPTION=profile CUBECL_DEBUG_LOG=FILE) per kernel:
launches, total and mean time, sorted by total. cubecl syncs around each profiled kernel, so the
times are per-kernel device times plus a sync, not a step's wall time.
Usage: kernel_profile.py LOG [--top 25]
"""
import argparse
import collections
import re

UNIT_MS = {"ns": 1e-6, "µs": 1e-3, "us": 1e-3, "ms": 1.0, "s": 1e3}
ROW = re.compile(r"^\| ([0-9.]+)(ns|µs|us|ms|s) +\| (\S+)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("log")
    ap.add_argument("--top", type=int, default=25)
    a = ap.parse_args()
    launches, total = collections.Counter(), collections.Counter()
    with open(a.log, errors="replace") as f:
        for line in f:
            m = ROW.match(line)
            if m:
                name = re.sub(r"_[0-9a-f]{8}$", "", m.group(3))  # drop the kernel hash
                launches[name] += 1
                total[name] += float(m.group(1)) * UNIT_MS[m.group(2)]
    print(f"{sum(launches.values())} launches, {sum(total.values()):.1f} ms in all ({a.log})")
    print(f"{'kernel':<44} {'launches':>9} {'total ms':>10} {'mean µs':>9}")
    for name, ms in total.most_common(a.top):
        print(f"{name[:44]:<44} {launches[name]:>9} {ms:>10.1f} {1e3 * ms / launches[name]:>9.1f}")


if __name__ == "__main__":
    main()
