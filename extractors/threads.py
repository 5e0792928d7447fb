"""Native thread pools: one thread per process, for reproducible numbers."""

from __future__ import annotations

_pinned = False


def single_threaded_math() -> None:
    """Limit this process's BLAS/OpenMP pools and OpenCV's own pool to one thread (idempotent).

    Multi-threaded OpenBLAS sums in a different order depending on its thread count, which moved
    MFCC values by ~2e-5 between a 1-thread and a 2-thread run (measured here): features would
    depend on the machine and the worker layout. One thread per process makes them byte-identical
    on every runner, and N worker processes no longer oversubscribe N cores (two concurrent MFCC
    loops ran at 1.1x the throughput of one with default pools, 1.9x with one thread each).
    """
    global _pinned
    if not _pinned:
        from threadpoolctl import threadpool_limits

        try:  # first: OpenCV's wheel brings its own OpenBLAS, which a limit set before the import misses
            import cv2
        except ImportError:  # pragma: no cover - OpenCV is a dependency, but the audio path does not need it
            pass
        else:
            cv2.setNumThreads(1)
        threadpool_limits(limits=1)
        _pinned = True
