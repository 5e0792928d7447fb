"""Deterministic seeds derived from (global seed, sample id, view)."""

from __future__ import annotations

import hashlib


def derive_seed(global_seed: int, sample_id: str, view: int) -> int:
    """A 63-bit seed that depends only on its arguments (stable across processes and runs)."""
    digest = hashlib.blake2b(f"{global_seed}\x1f{sample_id}\x1f{view}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


def stable_bucket(key: str, buckets: int) -> int:
    """Deterministic bucket in ``range(buckets)`` for ``key`` (unlike ``hash()``, not salted per process)."""
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % buckets
