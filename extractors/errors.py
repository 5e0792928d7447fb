"""The one exception an extractor raises for bad input."""

from __future__ import annotations


class Rejected(Exception):
    """Input that cannot become a training example; the pipeline turns it into a rejects row.

    ``reason`` is a short stable snake_case code (it is grouped and counted);
    ``detail`` is free text for a human.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
