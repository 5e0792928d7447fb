"""Write the dataset card (``README.md``), then ``_manifest.json``, once every shard is written (they depend on all
shard results)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import apache_beam as beam
import pyarrow.parquet as pq

from mmfeat.extractors.text import Vocabulary
from mmfeat.pipelines.io import write_text_atomically
from mmfeat.pipelines.storage import StoreOptions, at, store_options
from mmfeat.schemas.card import dataset_card
from mmfeat.schemas.layout import CARD_FILE
from mmfeat.schemas.manifest import MANIFEST_FILE, build_manifest
from mmfeat.schemas.paths import parquet_source
from mmfeat.schemas.stats import merge_statistics


def _write_manifest(
    results: list[Any],
    input_count: int,
    vocab: Vocabulary | None,
    leakage: list[dict[str, Any]] | None,
    *,
    dataset_dir: str,
    static: dict[str, Any],
    store: StoreOptions | None = None,
) -> str:
    vocabulary = None
    if vocab is not None:
        vocabulary = {
            "path": static["vocab_file"],
            "size": len(vocab),
            "pad_id": vocab.PAD_ID,
            "oov_id": vocab.OOV_ID,
            "source_splits": list(vocab.source_splits),
        }
    train_splits = list(vocab.source_splits) if vocab is not None else []
    shard_stats = [{"split": r.split, "stats": r.stats} for r in results if r.stats is not None]
    statistics = merge_statistics(shard_stats, train_splits=train_splits) if shard_stats else None
    manifest = build_manifest(
        dataset=static["dataset"],
        input_count=input_count,
        shards=[{k: v for k, v in dataclasses.asdict(r).items() if k not in ("stats", "fingerprints")} for r in results],
        config=static["config"],
        config_sha256=static["config_sha256"],
        runner=static["runner"],
        vocabulary=vocabulary,
        leakage=leakage,
        statistics=statistics,
    )
    root = at(dataset_dir, store)
    stored = pq.read_schema(parquet_source(root / manifest["shards"][0]["path"])) if manifest["shards"] else None
    write_text_atomically(root / CARD_FILE, dataset_card(manifest, stored))
    path = root / MANIFEST_FILE
    write_text_atomically(path, json.dumps(manifest, indent=2, sort_keys=False))
    return str(path)


class WriteManifest(beam.PTransform):
    """Shard results + input count (+ vocabulary, + leakage) → ``_manifest.json``; fails the run if counts do not balance."""

    def __init__(
        self, dataset_dir: str, *, dataset: str, config: dict[str, Any], config_sha256: str, runner: str, vocab_file: str
    ) -> None:
        super().__init__()
        self.dataset_dir = dataset_dir
        self.static = {
            "dataset": dataset,
            "config": config,
            "config_sha256": config_sha256,
            "runner": runner,
            "vocab_file": vocab_file,
        }

    def expand(self, inputs):  # a dict of PCollections (no annotation: Beam would read it as a type hint)
        """``inputs``: ``results`` and ``input_count``, and ``vocab`` and ``leakage`` where the graph has them."""
        results, input_count = inputs["results"], inputs["input_count"]
        vocab, leakage = inputs.get("vocab"), inputs.get("leakage")
        gathered = results | "GatherShards" >> beam.combiners.ToList()
        return gathered | "Write" >> beam.Map(
            _write_manifest,
            input_count=beam.pvalue.AsSingleton(input_count),
            vocab=beam.pvalue.AsSingleton(vocab) if vocab is not None else None,
            leakage=beam.pvalue.AsSingleton(leakage) if leakage is not None else None,
            dataset_dir=self.dataset_dir,
            static=self.static,
            store=store_options(),
        )
