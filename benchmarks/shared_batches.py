"""Does the one-block shared-memory hand-over of training batches pay for itself beside a training step?

    python benchmarks/shared_batches.py [--dataset librispeech|coco] [--size 600] [--epochs 2] [--rounds 5]

Writes a pipeline output once, then trains a small model on the training split, FeatureDataset(batch_size=32)
through DataLoader(num_workers=2, persistent_workers=True), in two ways per round (interleaved):
  one block:   the reader's batches as they are (``Batch``: the worker copies every tensor into one shared block,
               reused once the trainer let go of it; schemas/shared_batch.py);
  torch's own: the same batches as plain dicts, which torch's worker transport moves tensor by tensor.
The training step is a forward and backward pass of a small model on the batch (LibriSpeech: a 2-layer GRU of
width 128 over the MFCC frames; COCO: a 4-layer CNN over the 224x224 images), one torch thread, as a CPU
trainer beside 2 loader workers on this 2-core machine would run. Prints steps/s (median over rounds) and the
ratio one block / torch's own with its range. Not a timed test.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from reader import COLUMNS, write_output  # noqa: E402


def model_for(dataset: str):
    import torch

    if dataset == "librispeech":

        class Speech(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.gru = torch.nn.GRU(input_size=40, hidden_size=128, num_layers=2, batch_first=True)
                self.out = torch.nn.Linear(128, 10)

            def forward(self, batch):
                frames = batch["mfcc"].float()
                return self.out(self.gru(frames)[0].mean(dim=1))

        return Speech()

    class Images(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            layers, width = [], 3
            for out in (16, 32, 64, 64):
                layers += [torch.nn.Conv2d(width, out, 3, stride=2, padding=1), torch.nn.ReLU()]
                width = out
            self.body = torch.nn.Sequential(*layers)
            self.out = torch.nn.Linear(64, 10)

        def forward(self, batch):
            images = batch["image"].permute(0, 3, 1, 2).float() / 255.0
            return self.out(self.body(images).mean(dim=(2, 3)))

    return Images()


def trainer(dataset_dir: Path, split: str, dataset: str, *, one_block: bool):
    import torch

    from mmfeat.schemas.reader import FeatureDataset, keep_batch

    class PlainDicts(torch.utils.data.IterableDataset):
        """The reader's batches as plain dicts: torch's own transport, a segment per tensor."""

        def __init__(self, inner) -> None:
            self.inner = inner

        def __iter__(self):
            for batch in self.inner:
                yield dict(batch)

    data = FeatureDataset(dataset_dir, split=split, columns=COLUMNS[dataset], shuffle=True, seed=0, batch_size=32)
    source = data if one_block else PlainDicts(data)
    loader = torch.utils.data.DataLoader(source, batch_size=None, collate_fn=keep_batch, num_workers=2, persistent_workers=True)
    model = model_for(dataset)
    optimiser = torch.optim.SGD(model.parameters(), lr=0.01)

    def epoch(number: int) -> int:
        data.set_epoch(number)
        steps = 0
        for batch in loader:
            logits = model(batch)
            loss = torch.nn.functional.cross_entropy(logits, torch.zeros(len(logits), dtype=torch.long))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            steps += 1
        return steps

    epoch(0)  # workers started, first batches made, outside the clock
    return epoch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=tuple(COLUMNS), default="librispeech")
    parser.add_argument("--size", type=int, default=600)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        dataset_dir, split = write_output(args.dataset, args.size, Path(tmp))
        names = ("one block", "torch's own")
        runs = {name: trainer(dataset_dir, split, args.dataset, one_block=name == "one block") for name in names}
        rates: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(args.rounds):
            for name, run in runs.items():
                started, steps = time.perf_counter(), 0
                for number in range(1, args.epochs + 1):
                    steps += run(number)
                rates[name].append(steps / (time.perf_counter() - started))
    ratios = [a / b for a, b in zip(rates["one block"], rates["torch's own"])]
    what = "batches of 32, 2 loader workers, a training step per batch"
    print(f"{args.dataset}, {args.size} examples, {what}; {args.rounds} rounds")
    for name, values in rates.items():
        print(f"  {name:<12} {statistics.median(values):7.2f} steps/s  ({min(values):.2f}-{max(values):.2f})")
    print(f"  one block / torch's own: {statistics.median(ratios):.3f} ({min(ratios):.3f}-{max(ratios):.3f})")


if __name__ == "__main__":
    main()
