"""Torch encoders through Beam's RunInference, on the heavy stream of WorkItems and rejects.

``EncodeModelHandler`` is a Beam ``ModelHandler`` whose examples are the stream's elements:
RunInference batches them with ``BatchElements`` (sizes from :class:`EncoderConfig`), loads the
model once per worker process (Beam's ``Shared``) on the device chosen at load, and the handler
runs the encoder under ``torch.inference_mode`` (autocast on CUDA) on the WorkItems of a batch.

Two deliberate differences from a textbook ``RunInference(...).with_exception_handling()``:
- rejects already in the stream pass through the handler untouched, and
- an inference failure is isolated item by item and returned in-band as a reject,
because a dead-letter PCollection would need a Flatten before the shard writer, and Beam's
FnApiRunner materialises every multi-input Flatten (all feature rows in memory, shards split
across workers). Results stay attached to their sample ids because the elements carry them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

import apache_beam as beam
import numpy as np
from apache_beam.ml.inference.base import ModelHandler, RunInference

from mmfeat.extractors.encoders import get_encoder
from mmfeat.extractors.encoders.base import EncoderConfig, EncoderSpec, resolve_device, torch_dtype
from mmfeat.extractors.threads import single_threaded_math
from mmfeat.pipelines.transforms.stage import Stage, WorkItem

_log = logging.getLogger(__name__)
STAGE = "encode"


class PrepareForEncoder(Stage):
    """CPU-side preprocessing of ``arrays[input_array]`` into ``arrays[<encoder>_input]`` (e.g. resize + crop)."""

    name = "prepare_encoder_input"

    def __init__(self, config: EncoderConfig, input_array: str) -> None:
        super().__init__()
        self.config = config
        self.input_array = input_array

    def setup(self) -> None:
        super().setup()
        self._spec = get_encoder(self.config.name)

    def apply(self, item: WorkItem) -> Iterable[WorkItem]:
        item.arrays[f"{self._spec.name}_input"] = self._spec.preprocess(item.arrays[self.input_array])
        yield item


class EncodeModelHandler(ModelHandler[Any, Any, Any]):
    """Encodes the WorkItems of each batch into ``columns[output_column]`` (float32 vectors)."""

    def __init__(self, config: EncoderConfig, output_column: str) -> None:
        super().__init__(
            min_batch_size=config.min_batch_size,
            max_batch_size=config.max_batch_size,
            max_batch_duration_secs=config.max_batch_duration_secs,
        )
        if not config.name:
            raise ValueError("EncodeModelHandler needs an encoder name")
        self.config = config
        self.output_column = output_column
        self._input_array = f"{config.name}_input"
        self._spec: EncoderSpec | None = None

    @property
    def spec(self) -> EncoderSpec:
        """Resolved once per handler copy (a shared model may be loaded by another copy)."""
        if self._spec is None:
            self._spec = get_encoder(self.config.name)
        return self._spec

    def load_model(self) -> Any:
        import torch

        single_threaded_math()
        spec = self.spec
        device = resolve_device(self.config.device)
        model = spec.load(self.config).to(device)
        if device.type == "cuda":
            model = model.to(memory_format=torch.channels_last)
        _log.info("loaded encoder %s on %s", spec.name, device)
        return model

    def run_inference(self, batch: Sequence[Any], model: Any, inference_args: dict[str, Any] | None = None) -> Iterable[Any]:
        items = [element for element in batch if isinstance(element, WorkItem)]
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

    def _encode(self, items: list[WorkItem], model: Any) -> np.ndarray:
        import torch

        spec = self.spec
        device = next(model.parameters()).device
        batch = torch.from_numpy(np.stack([item.arrays[self._input_array] for item in items])).to(device, non_blocking=True)
        use_autocast = device.type == "cuda" and self.config.dtype != "float32"
        with torch.inference_mode(), torch.autocast(device.type, dtype=torch_dtype(self.config.dtype), enabled=use_autocast):
            embeddings = spec.forward(model, batch)
        out = embeddings.float().cpu().numpy()
        if not np.isfinite(out).all():
            raise FloatingPointError("encoder produced NaN or Inf")
        return out

    def _with_embeddings(self, items: list[WorkItem], embeddings: np.ndarray) -> list[WorkItem]:
        for item, vector in zip(items, embeddings):
            item.columns[self.output_column] = np.ascontiguousarray(vector, dtype=np.float32)
        return items

    def get_num_bytes(self, batch: Sequence[Any]) -> int:
        """Input bytes of a batch (Beam's default pickles the whole batch just to measure it)."""
        return sum(
            int(e.arrays[self._input_array].nbytes) for e in batch if isinstance(e, WorkItem) and self._input_array in e.arrays
        )

    def get_metrics_namespace(self) -> str:
        return f"mmfeat.encode.{self.config.name}"


class Encode(beam.PTransform):
    """Preprocess on the CPU, then RunInference with :class:`EncodeModelHandler`; the stream's shape is kept."""

    def __init__(self, config: EncoderConfig, *, input_array: str, output_column: str) -> None:
        super().__init__()
        self.config = config
        self.input_array = input_array
        self.output_column = output_column

    def expand(self, stream: beam.PCollection) -> beam.PCollection:
        prepared = stream | "Prepare" >> beam.ParDo(PrepareForEncoder(self.config, self.input_array))
        return prepared | "RunInference" >> RunInference(EncodeModelHandler(self.config, self.output_column))
