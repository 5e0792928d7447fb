"""Text normalisation + tokens (light, before sharding), and the vocabulary full pass."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import apache_beam as beam
import pyarrow as pa

from mmfeat.extractors.errors import Rejected
from mmfeat.extractors.text import TextConfig, Tokenizer, VocabConfig, Vocabulary, prepare_text
from mmfeat.pipelines.io import write_text_atomically
from mmfeat.pipelines.transforms.stage import REJECTS
from mmfeat.schemas.fields import TEXT_FIELDS
from mmfeat.schemas.records import Reject

VOCAB_FILE = "vocab.json"
LEMMA_FIELD = pa.field("lemmas", pa.list_(pa.string()))


def text_fields(config: TextConfig) -> tuple[pa.Field, ...]:
    """Columns of a record's prepared text: text, tokens, token_ids, and lemmas when enabled."""
    return TEXT_FIELDS + ((LEMMA_FIELD,) if config.lemmatize else ())


def text_columns(record: Any) -> dict[str, Any]:
    """The text columns of a prepared record (``lemmas`` is ignored unless the schema has it)."""
    return {
        "text": record.text,
        "tokens": list(record.tokens),
        "token_ids": list(record.token_ids),
        "lemmas": list(record.lemmas) if record.lemmas is not None else None,
    }


class PrepareText(beam.DoFn):
    """Sets ``text`` and ``tokens`` (and ``lemmas``) on records from their raw ``transcript``; empty text is rejected."""

    def __init__(self, config: TextConfig) -> None:
        super().__init__()
        self.config = config

    def setup(self) -> None:
        self._tokenizer = Tokenizer(self.config)

    def process(self, record: Any) -> Iterator[Any]:
        if isinstance(record, Reject):
            yield record
            return
        try:
            text, tokens = prepare_text(record.transcript, self.config, self._tokenizer)
        except Rejected as err:
            yield beam.pvalue.TaggedOutput(
                REJECTS,
                Reject(record.sample_id, record.split, record.source_path, stage="text", reason=err.reason, detail=err.detail),
            )
            return
        lemmas = tuple(self._tokenizer.lemmas(text)) if self.config.lemmatize else None
        yield dataclasses.replace(record, text=text, tokens=tuple(tokens), lemmas=lemmas)


def vocabulary_splits(config: VocabConfig, present: list[str]) -> list[str]:
    """Splits the vocabulary is counted on: configured, else those named train*, else all present."""
    if config.splits:
        return sorted(set(config.splits) & set(present))
    train = [s for s in present if s.startswith("train")]
    return sorted(train or present)


def _build_and_write(split_counts: list[tuple[tuple[str, str], int]], config: VocabConfig, path: str) -> Vocabulary:
    present = sorted({split for (split, _), _ in split_counts})
    chosen = set(vocabulary_splits(config, present))
    totals: dict[str, int] = {}
    for (split, token), n in split_counts:
        if split in chosen:
            totals[token] = totals.get(token, 0) + n
    vocab = Vocabulary.build(totals.items(), config, source_splits=sorted(chosen))
    write_text_atomically(Path(path), vocab.to_json())
    return vocab


def _load_and_copy(_: Any, source: str, path: str) -> Vocabulary:
    vocab = Vocabulary.from_json(Path(source).read_text(encoding="utf-8"))
    write_text_atomically(Path(path), vocab.to_json())
    return vocab


class BuildVocabulary(beam.PTransform):
    """Count tokens per split in one full pass, build the vocabulary, write ``vocab.json``; yields it once.

    With ``config.path`` set, that vocabulary is loaded (and copied next to the shards) instead.
    """

    def __init__(self, config: VocabConfig, output_path: str) -> None:
        super().__init__()
        self.config = config
        self.output_path = output_path

    def expand(self, records: beam.PCollection) -> beam.PCollection:
        if self.config.path:
            return (
                records.pipeline
                | "One" >> beam.Create([None])
                | "Load" >> beam.Map(_load_and_copy, source=self.config.path, path=self.output_path)
            )
        return (
            records
            | "SplitTokens" >> beam.FlatMap(lambda r: ((r.split, tok) for tok in r.tokens))
            | "Count" >> beam.combiners.Count.PerElement()
            | "Gather" >> beam.combiners.ToList()
            | "Build" >> beam.Map(_build_and_write, config=self.config, path=self.output_path)
        )


def apply_vocabulary(record: Any, vocab: Vocabulary) -> Any:
    """Set ``token_ids`` from ``tokens``."""
    return dataclasses.replace(record, token_ids=tuple(vocab.encode(record.tokens)))
