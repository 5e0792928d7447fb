"""Text normalisation, spaCy tokenisation and a frequency-ranked vocabulary."""

from __future__ import annotations

import json
import re
import threading
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from mmfeat.extractors.errors import Rejected

_WHITESPACE = re.compile(r"\s+")
_CONTROL = {"Cc", "Cf", "Cs", "Co", "Cn"}


@dataclass(frozen=True)
class TextConfig:
    """How raw transcripts/captions become normalised text and tokens."""

    unicode_form: Literal["NFC", "NFKC", "NFD", "NFKD"] = "NFKC"
    lowercase: bool = True
    language: str = "en"
    lemmatize: bool = False

    def __post_init__(self) -> None:
        if self.unicode_form not in ("NFC", "NFKC", "NFD", "NFKD"):
            raise ValueError("unicode_form must be one of NFC, NFKC, NFD, NFKD")


def normalize_text(text: str, config: TextConfig) -> str:
    """Unicode-normalise, drop control characters, collapse whitespace, optionally lowercase."""
    text = unicodedata.normalize(config.unicode_form, text)
    text = "".join(" " if ch.isspace() else ch for ch in text if ch.isspace() or unicodedata.category(ch) not in _CONTROL)
    text = _WHITESPACE.sub(" ", text).strip()
    return text.lower() if config.lowercase else text


class Tokenizer:
    """spaCy rule-based tokeniser (``spacy.blank``: no model download), optional lookup lemmas."""

    def __init__(self, config: TextConfig) -> None:
        import spacy

        self.config = config
        self._nlp = spacy.blank(config.language)
        self._lemmatizer = None
        if config.lemmatize:
            try:
                self._lemmatizer = self._nlp.add_pipe("lemmatizer", config={"mode": "lookup"})
                self._nlp.initialize()
            except Exception as err:  # spaCy raises several types when the lookup tables are missing
                raise RuntimeError("text.lemmatize=true needs the lookup tables: pip install spacy-lookups-data") from err

    def tokenize(self, text: str) -> list[str]:
        """Tokens of already-normalised text, whitespace tokens removed."""
        return [tok.text for tok in self._nlp.tokenizer(text) if not tok.is_space]

    def lemmas(self, text: str) -> list[str]:
        """Lookup lemmas aligned with :meth:`tokenize` (requires ``lemmatize=True``)."""
        if self._lemmatizer is None:
            raise RuntimeError("lemmas() needs TextConfig(lemmatize=True)")
        doc = self._lemmatizer(self._nlp.tokenizer(text))
        return [tok.lemma_ or tok.text for tok in doc if not tok.is_space]


_THREAD_TOKENIZERS = threading.local()


def thread_tokenizer(config: TextConfig) -> Tokenizer:
    """This thread's tokenizer for ``config``, built on first use and kept for the thread's life.

    Building one takes about 0.5-0.9 s (spaCy's rules). Runners that set a DoFn up once per bundle
    (Beam's DaskRunner does it per partition) would otherwise pay that again and again in the same
    worker. Per thread, not per process, because a spaCy tokenizer updates its cache as it runs.
    """
    tokenizers = _THREAD_TOKENIZERS.__dict__.setdefault("by_config", {})
    if config not in tokenizers:
        tokenizers[config] = Tokenizer(config)
    return tokenizers[config]


def prepare_text(raw: str, config: TextConfig, tokenizer: Tokenizer) -> tuple[str, list[str]]:
    """Normalised text and its tokens; rejects text that is empty after normalisation."""
    text, tokens = normalize_and_tokenize(raw, config, tokenizer)
    if not tokens:
        raise Rejected("text_empty", f"no tokens in {raw[:80]!r}")
    return text, tokens


def normalize_and_tokenize(raw: str, config: TextConfig, tokenizer: Tokenizer) -> tuple[str, list[str]]:
    """Normalised text and its tokens (both empty for text with nothing in it)."""
    text = normalize_text(raw, config)
    return text, (tokenizer.tokenize(text) if text else [])


@dataclass(frozen=True)
class VocabConfig:
    """Vocabulary built in a full pass over the training split (or loaded from ``path``)."""

    min_freq: int = 1
    max_size: int | None = None
    splits: tuple[str, ...] = ()
    path: str | None = None
    pad_token: str = "<pad>"
    oov_token: str = "<unk>"

    def __post_init__(self) -> None:
        if self.min_freq < 1:
            raise ValueError("min_freq must be >= 1")
        if self.max_size is not None and self.max_size < 3:
            raise ValueError("max_size must be >= 3 (it includes the padding and OOV tokens)")
        if self.pad_token == self.oov_token:
            raise ValueError("pad_token and oov_token must differ")


@dataclass(frozen=True)
class Vocabulary:
    """Token ↔ id mapping: id 0 is padding, id 1 is out-of-vocabulary, then tokens by frequency."""

    tokens: tuple[str, ...]
    counts: tuple[int, ...]
    source_splits: tuple[str, ...] = ()
    _index: Mapping[str, int] = field(init=False, repr=False, compare=False)

    PAD_ID = 0
    OOV_ID = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {tok: i for i, tok in enumerate(self.tokens)})

    @classmethod
    def build(cls, counts: Iterable[tuple[str, int]], config: VocabConfig, *, source_splits: Sequence[str] = ()) -> Vocabulary:
        """Rank by count (desc) then token (asc) for determinism; apply min_freq and max_size."""
        specials = (config.pad_token, config.oov_token)
        ranked = sorted(((t, c) for t, c in counts if c >= config.min_freq and t not in specials), key=lambda tc: (-tc[1], tc[0]))
        if config.max_size is not None:
            ranked = ranked[: config.max_size - len(specials)]
        return cls(
            tokens=specials + tuple(t for t, _ in ranked),
            counts=(0, 0) + tuple(c for _, c in ranked),
            source_splits=tuple(source_splits),
        )

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, tokens: Iterable[str]) -> list[int]:
        """Token ids; unknown tokens map to ``OOV_ID``."""
        return [self._index.get(tok, self.OOV_ID) for tok in tokens]

    def to_json(self) -> str:
        """Stable JSON text of the vocabulary (the artefact written next to the shards)."""
        payload: dict[str, Any] = {
            "format": "mmfeat.vocabulary/1",
            "pad_id": self.PAD_ID,
            "oov_id": self.OOV_ID,
            "source_splits": list(self.source_splits),
            "tokens": list(self.tokens),
            "counts": list(self.counts),
        }
        return json.dumps(payload, ensure_ascii=False, indent=0)

    @classmethod
    def from_json(cls, text: str) -> Vocabulary:
        """Inverse of :meth:`to_json`; raises ValueError on anything else."""
        payload = json.loads(text)
        if payload.get("format") != "mmfeat.vocabulary/1":
            raise ValueError("not an mmfeat vocabulary file (format mmfeat.vocabulary/1 expected)")
        tokens, counts = payload["tokens"], payload["counts"]
        if len(tokens) != len(counts) or len(tokens) < 2:
            raise ValueError("vocabulary file has mismatched tokens/counts")
        return cls(tokens=tuple(tokens), counts=tuple(counts), source_splits=tuple(payload.get("source_splits", ())))
