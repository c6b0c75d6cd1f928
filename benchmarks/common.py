"""Shared benchmark helpers: median timing, copy-bandwidth probe and plain-text tables."""
import platform
import statistics
import subprocess
import time

import torch


def bench(fn, warmup=3, reps=15, min_time=0.3):
    """Median seconds per call of fn() (at least `reps` calls and about `min_time` seconds)."""
    for _ in range(warmup):
        fn()
    times = []
    start = time.perf_counter()
    while len(times) < reps or time.perf_counter() - start < min_time:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        if len(times) > 2000:
            break
    return statistics.median(times)


def copy_gbps(x):
    """Bandwidth of copying x into an existing tensor (read + write), the memory roof for an
    elementwise op on this machine, measured in the same run."""
    dst = torch.empty_like(x)
    t = bench(lambda: dst.copy_(x))
    return 2 * x.numel() * x.element_size() / t / 1e9, t


def machine():
    cpu = "unknown CPU"
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        cpu = next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except Exception:
        pass
    return f"{cpu}, {platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads"


def table(headers, rows):
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(headers)]
    line = "| " + " | ".join(str(h).ljust(w) for h, w in zip(headers, widths)) + " |"
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = ["| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |" for r in rows]
    return "\n".join([line, sep] + body)
