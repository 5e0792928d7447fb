"""Torch encoders through Beam's RunInference, on the heavy stream of WorkItems and rejects.

:class:`Encode` preprocesses each item on the CPU (:class:`PrepareForEncoder`), then runs Beam's
``RunInference`` with ``EncodeModelHandler`` (in :mod:`mmfeat.pipelines.transforms.inference`).
That module imports Beam's ``ml.inference``, hence torch (about 2.3 s), so it is imported only
when a pipeline has an encoder, not by every pipeline that imports this one.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import apache_beam as beam
import pyarrow as pa

from mmfeat.extractors.encoders import embedding_dim, encoder_for
from mmfeat.extractors.encoders.base import EncoderConfig
from mmfeat.pipelines.transforms.stage import Stage, WorkItem
from mmfeat.schemas.manifest import file_digest
from mmfeat.schemas.tensors import matrix_type


def from_array(name: str) -> Callable[[WorkItem], Any]:
    """Encoder input: an array a previous stage left on the item (e.g. the view's image, a clip's frames)."""
    return lambda item: item.arrays[name]


def from_raw_texts(item: WorkItem) -> Any:
    """Encoder input: the record's texts as written (every caption); text encoders normalise on their own."""
    return list(item.record.raw_texts)


def from_raw_text(item: WorkItem) -> Any:
    """Encoder input: the record's one text as written (a transcript)."""
    return item.record.raw_texts[0]


class PrepareForEncoder(Stage):
    """CPU-side preprocessing of the item's input into ``arrays[<encoder>_input]`` (resize + crop, tokenise).

    With ``many`` the input is a sequence (a clip's frames, an image's captions): each part is
    preprocessed and the encoder returns one embedding per part.
    """

    name = "prepare_encoder_input"

    def __init__(self, config: EncoderConfig, input_of: Callable[[WorkItem], Any], *, many: bool = False) -> None:
        super().__init__()
        self.config = config
        self.input_of = input_of
        self.many = many

    def setup(self) -> None:
        super().setup()
        self._spec = encoder_for(self.config)

    def output_fields(self, upstream: tuple[pa.Field, ...]) -> tuple[pa.Field, ...]:
        return ()  # its input, prepared, goes to ``arrays``

    def apply(self, item: WorkItem) -> Iterable[WorkItem]:
        value = self.input_of(item)
        prepared = [self._spec.preprocess(part) for part in value] if self.many else self._spec.preprocess(value)
        item.arrays[f"{self._spec.name}_input"] = prepared
        yield item


@functools.lru_cache(maxsize=16)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:  # size and mtime: a rewritten file is read again
    return file_digest(path).sha256


def weights_sha256(weights: str | Path | None) -> str | None:
    """sha256 of a weights file; of a model folder, the sha256 of its files' names and sha256s (sorted); None when
    there is nothing to read (weights from a library's own cache)."""
    if weights is None:
        return None
    path = Path(weights).expanduser()
    if path.is_file():
        stat = path.stat()
        return _file_sha256(str(path), stat.st_size, stat.st_mtime_ns)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and ".cache" not in p.parts)
        listing = "".join(f"{p.relative_to(path).as_posix()}\0{weights_sha256(p)}\n" for p in files)
        return hashlib.sha256(listing.encode("utf-8", "backslashreplace")).hexdigest()
    return None


def encoder_metadata(config: EncoderConfig) -> dict[bytes, bytes]:
    """An embedding column's provenance: ``mmfeat.encoder`` (its name), ``mmfeat.encoder_weights_sha256`` (of the
    weights file, or of a model folder's files; empty for weights in a library's own cache), ``mmfeat.encoder_device``
    (as configured: ``auto`` is CUDA where a worker has one) and ``mmfeat.encoder_dtype`` (autocast on CUDA; CPU
    passes run float32). The device class each batch ran on is counted in ``_run_stats.json``."""
    spec = encoder_for(config)
    return {
        b"mmfeat.encoder": spec.name.encode(),
        b"mmfeat.encoder_weights_sha256": (weights_sha256(spec.weights_of(config)) or "").encode(),
        b"mmfeat.encoder_device": str(config.device).encode(),
        b"mmfeat.encoder_dtype": str(config.dtype).encode(),
    }


class Encode(beam.PTransform):
    """Preprocess on the CPU, then RunInference with :class:`EncodeModelHandler`; the stream's shape is kept.

    ``input_of`` picks the input (``from_array("image")``, ``from_raw_texts``); with ``many`` it is a
    sequence and ``output_column`` gets a (parts, dim) matrix per item.
    """

    def __init__(
        self,
        config: EncoderConfig,
        *,
        output_column: str,
        input_array: str | None = None,
        input_of: Callable[[WorkItem], Any] | None = None,
        many: bool = False,
    ) -> None:
        super().__init__(label=f"Encode_{output_column}")
        if (input_array is None) == (input_of is None):
            raise ValueError("give exactly one of input_array and input_of")
        self.config = config
        self.input_of = input_of or from_array(input_array)
        self.output_column = output_column
        self.many = many

    def output_fields(self, upstream: tuple[pa.Field, ...]) -> tuple[pa.Field, ...]:
        """``output_column``: a float32 vector of the encoder's width, or with ``many`` a (parts, width) matrix; its
        metadata names the encoder, the sha256 of its weights, and the configured device and CUDA dtype."""
        dim = embedding_dim(self.config)
        data_type = matrix_type(dim) if self.many else pa.list_(pa.float32(), dim)
        return (pa.field(self.output_column, data_type, metadata=encoder_metadata(self.config)),)

    def expand(self, stream: beam.PCollection) -> beam.PCollection:
        from apache_beam.ml.inference.base import RunInference

        from mmfeat.pipelines.transforms.inference import EncodeModelHandler

        prepared = stream | "Prepare" >> beam.ParDo(PrepareForEncoder(self.config, self.input_of, many=self.many))
        handler = EncodeModelHandler(self.config, self.output_column, many=self.many)
        return prepared | "RunInference" >> RunInference(handler)
