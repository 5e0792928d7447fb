"""Validation shared by the augmentation configs."""

from __future__ import annotations


def check_probability(name: str, p: float) -> None:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{name}.p must be in [0, 1]")


def check_range(name: str, bounds: tuple[float, float]) -> None:
    if len(bounds) != 2 or bounds[0] > bounds[1]:
        raise ValueError(f"{name} must be [low, high] with low <= high")
