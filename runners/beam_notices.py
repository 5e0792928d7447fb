"""Beam's notices that say nothing to an mmfeat user, kept off the console.

A multi_processing run printed each of these once per SDK worker, and again as the runner relayed
the worker's log ("Worker: severity: WARN ..."), around the run's summary. Every one is expected here:
- ``apitools not found``: Beam's BigQuery client stub, imported with the Dataflow options (mmfeat reads
  no BigQuery);
- ``No semi_persistent_directory found``: local SDK workers get no staging folder (nothing is staged
  for them; a Flink or Dataflow worker has one);
- ``Discarding unparseable args``: DirectRunner flags that Beam passes on to its own SDK workers;
- ``Logging handler created``: an SDK worker's start.
Anything else a worker logs at WARNING or above still reaches the console.
"""

from __future__ import annotations

import logging

BENIGN_BEAM_NOTICES = (
    "apitools not found",
    "No semi_persistent_directory found",
    "Discarding unparseable args",
    "Logging handler created",
)


class DropBenignBeamNotices(logging.Filter):
    """A handler filter: drops records whose message holds one of ``BENIGN_BEAM_NOTICES``."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(notice in message for notice in BENIGN_BEAM_NOTICES)


def drop_benign_beam_notices(target: logging.Filterer) -> None:
    """Add the filter to a handler (every record it prints) or a logger (records logged on it), once."""
    if not any(isinstance(f, DropBenignBeamNotices) for f in target.filters):
        target.addFilter(DropBenignBeamNotices())


def quiet_benign_beam_notices() -> None:
    """Filter every handler of the root logger (where Beam's loggers and its relayed worker logs end)."""
    for handler in logging.getLogger().handlers:
        drop_benign_beam_notices(handler)
