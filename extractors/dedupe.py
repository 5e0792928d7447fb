"""Exact and near-duplicate detection over content hashes and 64-bit perceptual hashes.

Exact duplicates share a content sha256; near duplicates have perceptual hashes within
``near_distance`` bits (Hamming). Candidates come from banding (split the 64 bits into
``near_distance + 1`` bands: two hashes that close agree on at least one whole band), so the
work grows with the number of candidates, not with the square of the dataset.
Within a split, each connected group keeps its lowest ``sample_id`` and drops the rest; the same
image in two splits is reported as leakage, never dropped.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

HASH_BITS = 64


@dataclass(frozen=True)
class Fingerprint:
    split: str
    sample_id: str
    content_sha256: str
    perceptual_hash: int | None = None


@dataclass(frozen=True)
class Match:
    """``sample_id`` (in ``split``) is an exact or near copy of ``of_sample_id`` (in ``of_split``)."""

    split: str
    sample_id: str
    of_split: str
    of_sample_id: str
    kind: Literal["exact", "near"]
    distance: int  # Hamming distance of the perceptual hashes (0 when unknown)


@dataclass(frozen=True)
class DuplicateReport:
    dropped: tuple[Match, ...]  # within a split: each against the example it duplicates, which is kept
    leakage: tuple[Match, ...]  # across splits, between kept examples


def find_duplicates(fingerprints: Sequence[Fingerprint], *, near_distance: int | None) -> DuplicateReport:
    """Group exact and (when ``near_distance`` is not None) near copies; deterministic for any input order."""
    prints = sorted(fingerprints, key=lambda f: (f.split, f.sample_id))
    pairs = _exact_pairs(prints)
    if near_distance is not None:
        pairs |= _near_pairs(prints, near_distance)
    parent = list(range(len(prints)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in sorted(pairs):
        if prints[i].split == prints[j].split:
            a, b = root(i), root(j)
            parent[max(a, b)] = min(a, b)  # sorted by sample_id within a split: the lowest index is the lowest id
    dropped = [_match(prints[i], prints[root(i)]) for i in range(len(prints)) if root(i) != i]
    leaks = {tuple(sorted((root(i), root(j)))) for i, j in pairs if prints[i].split != prints[j].split}
    leakage = [_match(prints[b], prints[a]) for a, b in sorted(leaks)]
    return DuplicateReport(dropped=tuple(dropped), leakage=tuple(leakage))


def _match(copy: Fingerprint, original: Fingerprint) -> Match:
    exact = copy.content_sha256 == original.content_sha256
    distance = hamming(copy.perceptual_hash, original.perceptual_hash)
    return Match(copy.split, copy.sample_id, original.split, original.sample_id, "exact" if exact else "near", distance)


def hamming(a: int | None, b: int | None) -> int:
    return 0 if a is None or b is None else (a ^ b).bit_count()


def _exact_pairs(prints: Sequence[Fingerprint]) -> set[tuple[int, int]]:
    groups: dict[str, list[int]] = defaultdict(list)
    for i, f in enumerate(prints):
        groups[f.content_sha256].append(i)
    return {(g[0], j) for g in groups.values() for j in g[1:]}


def _near_pairs(prints: Sequence[Fingerprint], near_distance: int) -> set[tuple[int, int]]:
    known = [i for i, f in enumerate(prints) if f.perceptual_hash is not None]
    if len(known) < 2:
        return set()
    index = np.array(known)
    hashes = np.array([prints[i].perceptual_hash for i in known], dtype=np.uint64)
    bands = min(near_distance + 1, HASH_BITS)
    edges = np.linspace(0, HASH_BITS, bands + 1).round().astype(int)
    pairs: set[tuple[int, int]] = set()
    for start, stop in zip(edges[:-1], edges[1:]):
        keys = (hashes >> np.uint64(start)) & np.uint64((1 << int(stop - start)) - 1)
        order = np.argsort(keys, kind="stable")
        for group in np.split(order, np.flatnonzero(np.diff(keys[order])) + 1):
            if len(group) < 2:
                continue
            h = hashes[group]
            close = np.bitwise_count(h[:, None] ^ h[None, :]) <= near_distance
            first, second = np.nonzero(np.triu(close, k=1))
            pairs.update(zip(index[group[first]].tolist(), index[group[second]].tolist()))
    return {(min(i, j), max(i, j)) for i, j in pairs}
