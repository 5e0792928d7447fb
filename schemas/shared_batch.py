"""A training batch that crosses from a DataLoader worker to the trainer as one block of shared memory.

A DataLoader worker hands each batch to the trainer's process through a queue. torch moves every
tensor of it into its own shared-memory segment, and under its default ``file_descriptor`` strategy
each one is a file descriptor passed over a new connection to the worker. A reader batch holds up
to seven tensors (``mfcc``, ``mfcc_lengths``, ``mfcc_mask``, …), so that was seven segments, seven
connections and seven mappings per batch. ``benchmarks/reader.py`` measured it: 2 workers that did
nothing but hand over ready batches of MFCC delivered 0.25–0.32 of a bare Parquet scan's rows per second.

:class:`Batch`, pickled in a DataLoader worker, copies its tensors into one shared block (the copy
torch would make into seven) and the trainer gets views of it. The same workers then deliver 0.73–0.87
of the bare scan. Everywhere else it pickles as a plain dict of its values.
"""

from __future__ import annotations

from typing import Any

ALIGNMENT = 64  # bytes: every tensor's view starts here, so that any dtype may view the block


class Batch(dict):
    """Column name → tensor or list of values; a dict in every way except how it pickles in a worker."""

    def __copy__(self) -> Batch:  # torch's default_convert and pin_memory copy the batch and keep its type
        return Batch(self)

    def __reduce__(self) -> tuple[Any, ...]:
        import torch
        from torch.utils.data import get_worker_info

        tensors = {name: value for name, value in self.items() if _packable(value, torch)}
        if get_worker_info() is None or len(tensors) < 2:
            return Batch, (dict(self),)
        layout, size = [], 0
        for name, tensor in tensors.items():
            start = -(-size // ALIGNMENT) * ALIGNMENT
            nbytes = tensor.numel() * tensor.element_size()
            layout.append((name, tensor.dtype, tuple(tensor.shape), start, nbytes))
            size = start + nbytes
        block = _shared_bytes(size, torch)
        for name, dtype, shape, start, nbytes in layout:
            _view(block, dtype, shape, start, nbytes).copy_(tensors[name])
        others = {name: value for name, value in self.items() if name not in tensors}
        return _unpack, (block, layout, others, list(self))


def _packable(value: Any, torch: Any) -> bool:
    return (
        isinstance(value, torch.Tensor)
        and value.device.type == "cpu"
        and value.layout == torch.strided
        and not value.requires_grad
        and not value.is_quantized
    )


def _shared_bytes(size: int, torch: Any) -> Any:
    """An uninitialised uint8 tensor of ``size`` bytes in shared memory (no copy into it on the way)."""
    try:
        return torch.empty(0, dtype=torch.uint8).set_(torch.UntypedStorage._new_shared(size))
    except (AttributeError, TypeError):  # pragma: no cover - a torch without the private constructor
        return torch.empty(size, dtype=torch.uint8).share_memory_()


def _view(block: Any, dtype: Any, shape: tuple[int, ...], start: int, nbytes: int) -> Any:
    return block[start : start + nbytes].view(dtype).view(shape)


def _unpack(block: Any, layout: list[tuple[Any, ...]], others: dict[str, Any], order: list[str]) -> Batch:
    """The batch again, in its column order, its tensors views of ``block``."""
    values = {name: _view(block, dtype, shape, start, nbytes) for name, dtype, shape, start, nbytes in layout}
    values.update(others)
    return Batch((name, values[name]) for name in order)
