"""Where each file of a store lives, relative to ``OUT/<dataset>/`` (schema version 3.0).

Data files alone are Parquet, all under ``data/<split>/``; nothing else in the store ends in ``.parquet``, so
``OUT/<dataset>/**/*.parquet`` (DuckDB, Polars) and ``OUT/<dataset>/data`` (pyarrow, pandas) read exactly the
data rows. Rejects are JSON Lines under ``rejects/``; the vocabulary, the report, the dataset card and the run's
own files sit beside ``data/``.
"""

from __future__ import annotations

import re

DATA_DIR = "data"
REJECTS_DIR = "rejects"
SHARD_MARKERS_DIR = "_shards"
PROGRESS_DIR = "_progress"  # while a run writes: examples finished per writer (runners.progress); removed after
CARD_FILE = "README.md"
REJECTS_SUFFIX = ".jsonl"


def data_file(split: str, shard: str) -> str:
    return f"{DATA_DIR}/{split}/{shard}.parquet"


def rejects_file(shard: str) -> str:
    return f"{REJECTS_DIR}/{shard}{REJECTS_SUFFIX}"


def progress_file(writer: str) -> str:
    return f"{PROGRESS_DIR}/{writer}.json"


def marker_file(shard: str) -> str:
    return f"{SHARD_MARKERS_DIR}/{shard}.json"


def hub_split_names(splits: list[str]) -> dict[str, str]:
    """Each split's name as the Hugging Face ``datasets`` library accepts it (``\\w+(\\.\\w+)*``): every other
    character becomes ``_`` (``train-clean-100`` → ``train_clean_100``), and a name that two splits would share gets
    ``_2``, ``_3``… in split order."""
    names: dict[str, str] = {}
    taken: set[str] = set()
    for split in sorted(splits):
        base = re.sub(r"\W", "_", split) or "split"
        name, n = base, 1
        while name in taken:
            n += 1
            name = f"{base}_{n}"
        names[split] = name
        taken.add(name)
    return names
