"""A training batch that crosses from a DataLoader worker to the trainer as one block of shared memory.

A DataLoader worker hands each batch to the trainer's process through a queue. torch moves every
tensor of it into its own shared-memory segment, and under its default ``file_descriptor`` strategy
each one is a file descriptor passed over a new connection to the worker. A reader batch holds up
to seven tensors (``mfcc``, ``mfcc_lengths``, ``mfcc_mask``, …), so that was seven segments, seven
connections and seven mappings per batch. ``benchmarks/reader.py`` measured it: 2 workers that did
nothing but hand over ready batches of MFCC delivered 0.25–0.32 of a bare Parquet scan's rows per second.

:class:`Batch`, sent by a DataLoader worker (``ForkingPickler``, the result queue), copies its tensors
into one shared block (the copy torch would make into seven) and the trainer gets views of it. The same
workers then deliver 0.73–0.87 of the bare scan. Pickled any other way, or anywhere else, it is a plain
dict of its values.

A fresh block costs more than the copy into it: the kernel maps and zeroes its pages in the worker,
maps them again in the trainer and unmaps both (measured here: 5.0 ms to allocate and fill 8 MB of
new shared memory, 0.13 ms to fill a block again). So each worker keeps a few blocks
(:class:`_BlockPool`) and reuses one once the trainer has let go of every tensor of the batch it
held: the trainer's tensors are views of a per-batch ``lease`` whose finaliser marks the block free
in the block's own header, which both processes map. A batch kept by the trainer keeps its block;
when every pooled block is in use, the batch gets a fresh block, as before.

A pooled block crosses as a file descriptor only the first time: torch passes each descriptor over a
new authenticated connection to the worker, and the trainer maps it again (measured: 0.2-0.4 ms per
batch in the trainer, plus the worker's side). Later batches in it name the block, and the trainer
finds its mapping in :data:`_MAPPED`. A DataLoader's workers put their batches on one queue, each in
order, so the trainer always maps a block before it reads a batch that only names it. The trainer
forgets a block when its worker replaces it, and every block of a worker that has exited once it
maps a block of a new worker (so a finished DataLoader's blocks stay mapped until the next one starts).
"""

from __future__ import annotations

import itertools
import os
import secrets
import weakref
from dataclasses import dataclass, field
from multiprocessing.reduction import ForkingPickler
from typing import Any

import numpy as np

ALIGNMENT = 64  # bytes: every tensor's view starts here, so that any dtype may view the block
POOLED_BLOCKS_PER_WORKER = 8  # batches in flight: prefetch_factor (2) per worker, those the trainer holds, pinning
_FREE, _LEASED = 0, 1  # a pooled block's first byte


class Batch(dict):
    """Column name → tensor or list of values; a dict in every way except how a worker sends it to the trainer."""

    def __copy__(self) -> Batch:  # torch's default_convert and pin_memory copy the batch and keep its type
        return Batch(self)

    def __reduce__(self) -> tuple[Any, ...]:
        return Batch, (dict(self),)


def _reduce_across_processes(batch: Batch) -> tuple[Any, ...]:
    """How ``ForkingPickler`` (a DataLoader worker's result queue) sends a batch: from a worker, packed into one
    shared block. Only there: a batch that a worker pickles any other way (to a file, ``copy.deepcopy``) never
    reaches the trainer, so it must neither name a block nor lease one."""
    import torch
    from torch.utils.data import get_worker_info

    tensors = {name: value for name, value in batch.items() if _packable(value, torch)}
    if get_worker_info() is None or not tensors:
        return batch.__reduce__()
    layout, size = [], ALIGNMENT  # the first ALIGNMENT bytes: a pooled block's header
    for name, tensor in tensors.items():
        start = -(-size // ALIGNMENT) * ALIGNMENT
        nbytes = tensor.numel() * tensor.element_size()
        layout.append((name, tensor.dtype, tuple(tensor.shape), start, nbytes))
        size = start + nbytes
    pool = _worker_pool()
    pooled = pool.lease(size, torch)
    block = pooled.tensor if pooled is not None else _shared_bytes(size, torch)
    for name, dtype, shape, start, nbytes in layout:
        _view(block, dtype, shape, start, nbytes).copy_(tensors[name])
    others = {name: value for name, value in batch.items() if name not in tensors}
    if pooled is None:
        return _unpack, (block, layout, others, list(batch))
    sent_before, pooled.sent = pooled.sent, True
    ref = (pool.key, pooled.serial, pool.take_retired())
    return _unpack_lease, (ref, None if sent_before else block, layout, others, list(batch))


ForkingPickler.register(Batch, _reduce_across_processes)


@dataclass(eq=False)
class _PooledBlock:
    serial: int  # names the block in the trainer once it has been sent
    tensor: Any  # uint8 shared tensor; its first ALIGNMENT bytes are the header
    header: np.ndarray = field(init=False)
    sent: bool = False  # the trainer has it mapped: later batches in it only name it

    def __post_init__(self) -> None:
        self.header = self.tensor[:ALIGNMENT].numpy()


class _BlockPool:
    """A DataLoader worker's shared blocks, each reused once the trainer has released the batch it held."""

    def __init__(self, max_blocks: int = POOLED_BLOCKS_PER_WORKER) -> None:
        self.max_blocks = max_blocks
        self.key = (os.getpid(), secrets.token_hex(8))  # this pool's blocks in the trainer's _MAPPED
        self.blocks: list[_PooledBlock] = []
        self.retired: list[int] = []  # serials of replaced blocks the trainer has not been told of
        self._serials = itertools.count()

    def lease(self, size: int, torch: Any) -> _PooledBlock | None:
        """A block of at least ``size`` bytes marked leased, or None when every pooled block is in use."""
        free = [block for block in self.blocks if block.header[0] == _FREE]
        fitting = [block for block in free if block.tensor.numel() >= size]
        if fitting:
            block = min(fitting, key=lambda block: block.tensor.numel())
        elif len(self.blocks) < self.max_blocks or free:
            if len(self.blocks) >= self.max_blocks:  # every free block is too small: the largest of them makes way
                largest = max(free, key=lambda block: block.tensor.numel())
                self.blocks.remove(largest)
                if largest.sent:
                    self.retired.append(largest.serial)
            capacity = -(-(size + size // 4) // (1 << 16)) << 16  # a quarter to spare, in 64 KiB steps
            block = _PooledBlock(next(self._serials), _shared_bytes(capacity, torch))
            self.blocks.append(block)
        else:
            return None
        block.header[0] = _LEASED
        return block

    def take_retired(self) -> tuple[int, ...]:
        retired, self.retired = tuple(self.retired), []
        return retired


_MAPPED: dict[tuple[int, str], dict[int, Any]] = {}  # in the trainer: pool key → serial → the block, mapped


_POOL: _BlockPool | None = None


def _worker_pool() -> _BlockPool:
    global _POOL
    if _POOL is None:
        _POOL = _BlockPool()
    return _POOL


def _forget_blocks_in_child() -> None:
    """A forked process neither shares its parent's blocks (two processes would lease the same one) nor receives
    its parent's batches (the mappings would only keep the parent's blocks alive)."""
    global _POOL
    _POOL = None
    _MAPPED.clear()


os.register_at_fork(after_in_child=_forget_blocks_in_child)


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


def _unpack_lease(
    ref: tuple[tuple[int, str], int, tuple[int, ...]],
    block: Any | None,
    layout: list[tuple[Any, ...]],
    others: dict[str, Any],
    order: list[str],
) -> Batch:
    """The batch again, its tensors views of a ``lease`` of the pooled block; when the last of them is gone,
    the block's header says so and its worker may fill it again. ``ref``: the pool's key, the block's serial
    and the pool's retired serials; ``block`` is sent with the first batch in it only, None after that."""
    import torch

    block = _mapped_block(*ref, block)
    lease = block.numpy()  # a new array per batch: every view below keeps it, and only them
    weakref.finalize(lease, _release, block[:ALIGNMENT].numpy())
    values = {
        name: torch.from_numpy(lease[start : start + nbytes]).view(dtype).view(shape)
        for name, dtype, shape, start, nbytes in layout
    }
    values.update(others)
    return Batch((name, values[name]) for name in order)


def _release(header: np.ndarray) -> None:
    header[0] = _FREE


def _mapped_block(pool_key: tuple[int, str], serial: int, retired: tuple[int, ...], block: Any | None) -> Any:
    """Remember a block sent for the first time, or find one sent before; forget the pool's retired blocks."""
    blocks = _MAPPED.get(pool_key)
    if blocks is None:
        for key in [key for key in _MAPPED if not _alive(key[0])]:  # the blocks of workers that have exited
            _MAPPED.pop(key, None)
        blocks = _MAPPED.setdefault(pool_key, {})
    for gone in retired:
        blocks.pop(gone, None)
    if block is not None:
        blocks[serial] = block
        return block
    try:
        return blocks[serial]
    except KeyError:
        raise RuntimeError(
            f"a batch names shared block {serial} of DataLoader worker {pool_key[0]}, which this process never received:"
            " pooled batches can only be read, in order, by the process their worker sends them to"
        ) from None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - someone else's process has that id now
        return True
    return True


def _unpack(block: Any, layout: list[tuple[Any, ...]], others: dict[str, Any], order: list[str]) -> Batch:
    """The batch again, in its column order, its tensors views of ``block``."""
    values = {name: _view(block, dtype, shape, start, nbytes) for name, dtype, shape, start, nbytes in layout}
    values.update(others)
    return Batch((name, values[name]) for name in order)
