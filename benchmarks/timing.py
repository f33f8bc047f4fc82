"""The one timing helper the benchmarks share: median wall time over repeats."""
import statistics
import time


def timed(fn, repeats: int = 3):
    """Run fn `repeats` times; return its last result and the median seconds per run."""
    times, result = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return result, statistics.median(times)
