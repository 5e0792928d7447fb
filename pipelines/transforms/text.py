"""Text normalisation + tokens (light, before sharding), and the vocabulary full pass."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import apache_beam as beam
import pyarrow as pa

from mmfeat.extractors.text import TextConfig, VocabConfig, Vocabulary, normalize_and_tokenize, thread_tokenizer
from mmfeat.pipelines.io import write_text_atomically
from mmfeat.pipelines.storage import StoreOptions, at, store_options
from mmfeat.schemas.fields import TEXT_FIELDS
from mmfeat.schemas.records import PreparedText, Reject

VOCAB_FILE = "vocab.json"
LEMMA_FIELD = pa.field("lemmas", pa.list_(pa.string()))


def text_fields(config: TextConfig, *, each: str | None = None) -> tuple[pa.Field, ...]:
    """Columns of a record's prepared text: text, tokens, token_ids (and lemmas when enabled).

    A record with one text (a transcript) gets those columns as they are; with ``each="caption"``
    a record with several texts gets ``caption_texts``, ``caption_tokens``… as lists, one entry per text.
    """
    fields = TEXT_FIELDS + ((LEMMA_FIELD,) if config.lemmatize else ())
    if each is None:
        return fields
    return tuple(pa.field(f"{each}_{'texts' if f.name == 'text' else f.name}", pa.list_(f.type)) for f in fields)


def text_columns(record: Any, config: TextConfig, *, each: str | None = None) -> dict[str, Any]:
    """The text columns of a prepared record, named as in :func:`text_fields` (lemmas when ``config.lemmatize``)."""
    prepared = record.prepared
    columns = {
        "text": list(prepared.texts),
        "tokens": [list(t) for t in prepared.tokens],
        "token_ids": [list(t) for t in prepared.token_ids],
    }
    if config.lemmatize:
        columns["lemmas"] = [list(t) for t in prepared.lemmas] if prepared.lemmas is not None else None
    if each is None:
        return {name: (value[0] if value is not None else None) for name, value in columns.items()}
    return {f"{each}_{'texts' if name == 'text' else name}": value for name, value in columns.items()}


class PrepareText(beam.DoFn):
    """Sets ``prepared`` on records from their ``raw_texts`` (normalised text, tokens, lemmas).

    With ``require_text`` a record whose texts are all empty after normalisation is rejected
    (``text_empty``); without it such a record passes on with empty token lists. Rejects stay in
    the one output stream (Beam's DaskRunner merges tagged outputs into the main one).
    """

    def __init__(self, config: TextConfig, *, require_text: bool = True) -> None:
        super().__init__()
        self.config = config
        self.require_text = require_text

    def setup(self) -> None:
        self._tokenizer = thread_tokenizer(self.config)  # built once per worker thread, not per bundle

    def process(self, record: Any) -> Iterator[Any]:
        if isinstance(record, Reject):
            yield record
            return
        prepared = [normalize_and_tokenize(raw, self.config, self._tokenizer) for raw in record.raw_texts]
        if self.require_text and not any(tokens for _, tokens in prepared):
            raw = record.raw_texts
            detail = f"no tokens in {raw[0][:80]!r}" if raw else "no text"
            detail += f" or its {len(raw) - 1} other texts" if len(raw) > 1 else ""
            yield Reject(record.sample_id, record.split, record.source_path, stage="text", reason="text_empty", detail=detail)
            return
        texts = tuple(text for text, _ in prepared)
        lemmas = tuple(tuple(self._tokenizer.lemmas(t)) if t else () for t in texts) if self.config.lemmatize else None
        tokens = tuple(tuple(tokens) for _, tokens in prepared)
        yield dataclasses.replace(record, prepared=PreparedText(texts=texts, tokens=tokens, lemmas=lemmas))


def vocabulary_splits(config: VocabConfig, present: list[str]) -> list[str]:
    """Splits the vocabulary is counted on: configured, else those named train*, else all present."""
    if config.splits:
        return sorted(set(config.splits) & set(present))
    train = [s for s in present if s.startswith("train")]
    return sorted(train or present)


def _build_and_write(
    split_counts: list[tuple[tuple[str, str], int]], config: VocabConfig, path: str, store: StoreOptions | None
) -> Vocabulary:
    present = sorted({split for (split, _), _ in split_counts})
    chosen = set(vocabulary_splits(config, present))
    totals: dict[str, int] = {}
    for (split, token), n in split_counts:
        if split in chosen:
            totals[token] = totals.get(token, 0) + n
    vocab = Vocabulary.build(totals.items(), config, source_splits=sorted(chosen))
    write_text_atomically(at(path, store), vocab.to_json())
    return vocab


def _load_and_copy(_: Any, source: str, path: str, store: StoreOptions | None) -> Vocabulary:
    vocab = Vocabulary.from_json(at(source, store).read_text(encoding="utf-8"))
    write_text_atomically(at(path, store), vocab.to_json())
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
                | "Load" >> beam.Map(_load_and_copy, source=self.config.path, path=self.output_path, store=store_options())
            )
        return (
            records
            | "SplitTokens" >> beam.FlatMap(lambda r: ((r.split, tok) for tokens in r.prepared.tokens for tok in tokens))
            | "Count" >> beam.combiners.Count.PerElement()
            | "Gather" >> beam.combiners.ToList()
            | "Build" >> beam.Map(_build_and_write, config=self.config, path=self.output_path, store=store_options())
        )


def apply_vocabulary(record: Any, vocab: Vocabulary) -> Any:
    """Set ``prepared.token_ids`` from ``prepared.tokens``."""
    ids = tuple(tuple(vocab.encode(tokens)) for tokens in record.prepared.tokens)
    return dataclasses.replace(record, prepared=dataclasses.replace(record.prepared, token_ids=ids))
