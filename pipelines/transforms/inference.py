"""The RunInference model handler of :class:`mmfeat.pipelines.transforms.encode.Encode`.

``EncodeModelHandler`` is a Beam ``ModelHandler`` whose examples are the stream's elements:
RunInference batches them with ``BatchElements`` (sizes from :class:`EncoderConfig`), loads the
model once per worker process (Beam's ``Shared``) on the device chosen at load, and the handler
runs the encoder under ``torch.inference_mode`` (autocast on CUDA) on the WorkItems of a batch.

An embedding depends on its input alone, not on the batch Beam put it in (batch sizes follow
measured timings and bundle boundaries): every forward pass has a shape fixed by the input, with
``EncoderSpec.cpu_rows`` rows on the CPU (``max_batch_size`` on CUDA, the last pass filled with
copies; an encoder with ``cpu_rows=None`` fixes the size of its own calls) and variable-length inputs
grouped by their own padded length (``EncoderSpec.pad_multiple``).

Two deliberate differences from a textbook ``RunInference(...).with_exception_handling()``:
- rejects already in the stream pass through the handler untouched, and
- an inference failure is isolated item by item and returned in-band as a reject,
because a dead-letter PCollection would need a Flatten before the shard writer, and Beam's
FnApiRunner materialises every multi-input Flatten (all feature rows in memory, shards split
across workers). Results stay attached to their sample ids because the elements carry them.

Importing this module imports Beam's ``ml.inference`` and torch: ``Encode`` does it only when a
pipeline has an encoder.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from apache_beam.metrics import Metrics
from apache_beam.ml.inference.base import ModelHandler

from mmfeat.extractors.encoders import encoder_for
from mmfeat.extractors.encoders.base import EncoderConfig, EncoderSpec, padded_length, resolve_device, torch_dtype
from mmfeat.extractors.threads import single_threaded_math
from mmfeat.pipelines.transforms.stage import WorkItem

_log = logging.getLogger(__name__)
STAGE = "encode"  # the stage named in an encoder's rejects


def _input_parts(element: Any, input_array: str, many: bool) -> list[Any]:
    """An item's prepared encoder inputs (one, or a sequence with ``many``); none for anything else (a reject)."""
    if not isinstance(element, WorkItem) or input_array not in element.arrays:
        return []
    value = element.arrays[input_array]
    return list(value) if many else [value]


def input_length(element: Any, *, input_array: str, many: bool) -> int:
    """An item's prepared encoder input length for length-aware batching: samples of a waveform, tokens of a
    text (summed over the parts with ``many``; an image counts 1). Anything else (a reject) counts 0."""
    return int(sum(len(p) if getattr(p, "ndim", 1) == 1 else 1 for p in _input_parts(element, input_array, many)))


def input_weight(element: Any, *, input_array: str, many: bool) -> int:
    """An item's prepared encoder input size for weight-aware batching: its values in all (an image's pixels x
    channels, the sum over a clip's frames, a waveform's samples, a text's tokens). Anything else counts 0."""
    return int(sum(np.size(part) for part in _input_parts(element, input_array, many)))


class EncodeModelHandler(ModelHandler[Any, Any, Any]):
    """Encodes the WorkItems of each batch into ``columns[output_column]`` (float32 vectors)."""

    def __init__(self, config: EncoderConfig, output_column: str, *, many: bool = False) -> None:
        batching = {}
        if config.length_buckets:
            length = functools.partial(input_length, input_array=f"{config.name}_input", many=many)
            batching = {"batch_length_fn": length, "batch_bucket_boundaries": list(config.length_buckets)}
        if config.max_batch_weight is not None:  # Beam's BatchElements: at most this total weight per batch
            weight = functools.partial(input_weight, input_array=f"{config.name}_input", many=many)
            batching = {"max_batch_weight": config.max_batch_weight, "element_size_fn": weight}
        super().__init__(
            min_batch_size=config.min_batch_size,
            max_batch_size=config.max_batch_size,
            max_batch_duration_secs=config.max_batch_duration_secs,
            **batching,
        )
        if not config.name:
            raise ValueError("EncodeModelHandler needs an encoder name")
        self.config = config
        self.output_column = output_column
        self.many = many  # each item has a sequence of inputs: its column is a (parts, dim) matrix
        self._input_array = f"{config.name}_input"
        self._spec: EncoderSpec | None = None

    @property
    def spec(self) -> EncoderSpec:
        """Resolved once per handler copy (a shared model may be loaded by another copy)."""
        if self._spec is None:
            self._spec = encoder_for(self.config)
        return self._spec

    def load_model(self) -> Any:
        import torch

        single_threaded_math()
        torch.set_num_threads(1)  # torch imported after the pools were pinned keeps one thread per core otherwise
        spec = self.spec
        device = resolve_device(self.config.device)
        model = spec.load(self.config).to(device)
        if device.type == "cuda":
            model = model.to(memory_format=torch.channels_last)
        _log.info("loaded encoder %s on %s", spec.name, device)
        return model

    def run_inference(self, batch: Sequence[Any], model: Any, inference_args: dict[str, Any] | None = None) -> Iterable[Any]:
        items = [element for element in batch if isinstance(element, WorkItem)]
        if items:  # the device class the batch runs on, for _run_stats.json (a counter: metrics carry no text)
            Metrics.counter(self.get_metrics_namespace(), f"batches_on_{self._device_of(model).type}").inc()
        by_id = {id(item): out for item, out in zip(items, self._encode_isolating_failures(items, model))}
        return [by_id.get(id(element), element) for element in batch]

    def _encode_isolating_failures(self, items: list[WorkItem], model: Any) -> list[Any]:
        if not items:
            return []
        try:
            return self._with_embeddings(items, self._encode(items, model))
        except Exception as err:
            if len(items) == 1:
                _log.warning("encoder %s failed on %s", self.config.name, items[0].record.sample_id, exc_info=True)
                return [items[0].reject(STAGE, "encode_failed", f"{type(err).__name__}: {err}")]
        return [out for item in items for out in self._encode_isolating_failures([item], model)]  # find the bad one(s)

    def _encode(self, items: list[WorkItem], model: Any) -> list[np.ndarray]:
        """One embedding per item (a vector), or with ``many`` one (parts, dim) matrix per item."""
        inputs = [item.arrays[self._input_array] for item in items]
        parts = [part for value in inputs for part in value] if self.many else inputs
        counts = [len(value) for value in inputs] if self.many else [1] * len(inputs)
        out = np.zeros((len(parts), self.config.output_dim or self.spec.output_dim), dtype=np.float32)
        for rows, pad_to in self._forward_groups(parts):
            out[rows] = self._forward(model, [parts[row] for row in rows], pad_to)
        if not np.isfinite(out).all():
            raise FloatingPointError("encoder produced NaN or Inf")
        pieces = np.split(out, np.cumsum(counts)[:-1])
        return pieces if self.many else [piece[0] for piece in pieces]

    def _forward_groups(self, parts: list[Any]) -> list[tuple[list[int], int | None]]:
        """The forward passes of a batch: row indices, and the length they are padded to.

        Fixed-shape inputs make one pass. Variable-length inputs are grouped by their own padded length
        (``EncoderSpec.pad_multiple``), so an input's embedding does not depend on the batch it fell in.
        """
        multiple = self.spec.pad_multiple
        if not parts:
            return []
        if not multiple:
            return [(list(range(len(parts))), None)]
        groups: dict[int, list[int]] = {}
        for row, part in enumerate(parts):
            groups.setdefault(padded_length(len(part), multiple), []).append(row)
        return [(rows, pad_to) for pad_to, rows in sorted(groups.items())]

    def _forward(self, model: Any, parts: list[Any], pad_to: int | None) -> np.ndarray:
        """Embeddings of ``parts`` (one padded length) in passes of a fixed number of rows (``EncoderSpec.cpu_rows``)."""
        device = self._device_of(model)
        if self.spec.cpu_rows is None:  # the encoder keeps its own calls at a fixed size
            return self._forward_pass(model, device, parts, pad_to)
        rows = self.spec.cpu_rows if device.type == "cpu" else self.config.max_batch_size
        passes = []
        for start in range(0, len(parts), rows):
            chunk = parts[start : start + rows]
            filled = chunk + [chunk[-1]] * (rows - len(chunk))
            passes.append(self._forward_pass(model, device, filled, pad_to)[: len(chunk)])
        return np.concatenate(passes)

    def _forward_pass(self, model: Any, device: Any, parts: list[Any], pad_to: int | None) -> np.ndarray:
        import torch

        spec = self.spec
        batch = _to_device(spec.collate(parts) if pad_to is None else spec.collate(parts, pad_to=pad_to), device)
        use_autocast = device.type == "cuda" and self.config.dtype != "float32"
        with torch.inference_mode(), torch.autocast(device.type, dtype=torch_dtype(self.config.dtype), enabled=use_autocast):
            embeddings = spec.forward(model, batch).float().cpu().numpy()
        expected = (len(parts), self.config.output_dim or spec.output_dim)
        if embeddings.shape != expected:
            raise ValueError(f"encoder {spec.name} returned {embeddings.shape} for a batch of {len(parts)}, expected {expected}")
        return embeddings

    def _device_of(self, model: Any) -> Any:
        """Where the model's weights are (a model without any runs on the configured device)."""
        for tensor in (*model.parameters(), *model.buffers()):
            return tensor.device
        return resolve_device(self.config.device)

    def _with_embeddings(self, items: list[WorkItem], embeddings: list[np.ndarray]) -> list[WorkItem]:
        for item, value in zip(items, embeddings):
            item.columns[self.output_column] = np.ascontiguousarray(value, dtype=np.float32)
        return items

    def get_num_bytes(self, batch: Sequence[Any]) -> int:
        """Input bytes of a batch (Beam's default pickles the whole batch just to measure it)."""
        total = 0
        for element in batch:
            if isinstance(element, WorkItem) and self._input_array in element.arrays:
                value = element.arrays[self._input_array]
                total += sum(int(p.nbytes) for p in value) if self.many else int(value.nbytes)
        return total

    def get_metrics_namespace(self) -> str:
        return f"mmfeat.encode.{self.config.name}"


def _to_device(batch: Any, device: Any) -> Any:
    if isinstance(batch, (tuple, list)):
        return type(batch)(part.to(device, non_blocking=True) for part in batch)
    return batch.to(device, non_blocking=True)
