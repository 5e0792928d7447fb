"""Tiny torch models for the user-supplied-encoder tests, and a helper that runs an encoder as the Encode stage
does (importable as tests.encoder_models)."""

import torch
from torch import nn

from mmfeat.pipelines.transforms.encode import PrepareForEncoder, from_array
from mmfeat.pipelines.transforms.inference import EncodeModelHandler
from mmfeat.pipelines.transforms.stage import WorkItem
from mmfeat.schemas.records import ShardKey

KEY = ShardKey("train", 0, 1, 3)


class Record:
    def __init__(self, sample_id):
        self.sample_id, self.split, self.source_path = sample_id, "train", "x"


def encode(config, arrays, name):
    """Embeddings of ``arrays`` (the input array ``name`` of one item each): preprocessing, then the model handler."""
    prepare = PrepareForEncoder(config, from_array(name))
    prepare.setup()
    items = [next(iter(prepare.apply(WorkItem(KEY, Record(str(i)), arrays={name: a})))) for i, a in enumerate(arrays)]
    handler = EncodeModelHandler(config, "embedding")
    return [item.columns["embedding"] for item in handler.run_inference(items, handler.load_model())]


class TinyAudioNet(nn.Module):
    """(N, T) padded waveforms + lengths -> (N, 4): masked mean, std, max |x| and duration in seconds."""

    def forward(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        mask = (torch.arange(waveforms.shape[1])[None, :] < lengths[:, None]).float()
        count = lengths.float().clamp(min=1)
        mean = (waveforms * mask).sum(dim=1) / count
        var = (((waveforms - mean[:, None]) * mask) ** 2).sum(dim=1) / count
        peak = (waveforms.abs() * mask).amax(dim=1)
        return torch.stack([mean, var.sqrt(), peak, lengths.float() / 16000.0], dim=1)


class TinyImageNet(nn.Module):
    """(N, 3, H, W) in [0, 1] -> (N, channels): one convolution, global average pooling."""

    def __init__(self, channels: int = 8) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, channels, kernel_size=3)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.conv(images).mean(dim=(2, 3))


class FailingAudioNet(nn.Module):
    """Loads like any model, fails on every batch: every example becomes an ``encode_failed`` reject."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1))

    def forward(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("this model fails on every batch")
