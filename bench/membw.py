"""Measure memory read bandwidth: host RAM (numpy, all cores) and each GPU (torch), as JSON.

Why: the report's decode ceiling divides bytes read per token by bandwidth. Where dmidecode
cannot tell the DIMM speed (VMs, containers) or the datasheet figure is optimistic, a measured
figure is the honest input: ``python -m bench.report DIR --host-bandwidth-gbps X``.

    python -m bench.membw [--gib 4] [--threads N] [--repeats 5]

Host: N threads each sum a disjoint slice of a buffer much larger than the caches (numpy
releases the GIL in its reduction loops), best of several passes. GPU: a device-to-device copy,
counting bytes read plus written (what a weight read competes with), best of several passes.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

GB = 1e9


def host_read_gbps(gib: float, threads: int, repeats: int) -> float:
    n = int(gib * 2**30) // 8
    buf = np.ones(n, dtype=np.float64)  # touch every page before timing
    chunks = np.array_split(buf, threads)
    best = 0.0
    with ThreadPoolExecutor(threads) as pool:
        for _ in range(repeats):
            start = time.perf_counter()
            list(pool.map(np.sum, chunks))
            best = max(best, buf.nbytes / (time.perf_counter() - start) / GB)
    return best


def gpu_copy_gbps(gib: float, repeats: int) -> list[float]:
    try:
        import torch
    except ImportError:
        return []
    if not torch.cuda.is_available():
        return []
    rates = []
    n = int(gib * 2**30)
    for index in range(torch.cuda.device_count()):
        with torch.cuda.device(index):
            src = torch.randint(0, 255, (n,), dtype=torch.uint8, device="cuda")
            dst = torch.empty_like(src)
            dst.copy_(src)
            torch.cuda.synchronize()
            best = 0.0
            for _ in range(repeats):
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                dst.copy_(src)
                end.record()
                torch.cuda.synchronize()
                best = max(best, 2 * n / (start.elapsed_time(end) / 1000) / GB)
            rates.append(best)
            del src, dst
            torch.cuda.empty_cache()
    return rates


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.membw", description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=float, default=4.0, help="buffer size per measurement (GiB)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    result = {
        "host_read_gbps": round(host_read_gbps(args.gib, args.threads, args.repeats), 1),
        "host_threads": args.threads,
        "gpu_copy_gbps": [round(r, 1) for r in gpu_copy_gbps(args.gib, args.repeats)],
        "buffer_gib": args.gib,
        "method": "host: threads summing disjoint slices (read); gpu: d2d copy, read+write bytes",
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
