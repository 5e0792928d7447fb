"""A small imagefolder and audiofolder, with broken files among them (``mmfeat sample-data``)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

PHOTOS = {  # file (under images/) -> scikit-image photo; labels are the folder names
    "train/cat/chelsea.jpg": "chelsea",
    "train/cat/chelsea-small.png": "chelsea",
    "train/space/astronaut.jpg": "astronaut",
    "train/space/rocket.png": "rocket",
    "test/cat/coffee.jpg": "coffee",
    "test/space/hubble.jpg": "hubble_deep_field",
}
CAPTIONS = {"train/cat/chelsea.jpg": "A ginger cat looks up.", "train/space/rocket.png": "A rocket on its launch pad."}


def write_folder_sample(out: str | Path) -> Path:
    """Write ``out/folder/images`` (returned) and ``out/folder/audio``."""
    root = Path(out) / "folder"
    _write_images(root / "images")
    _write_audio(root / "audio")
    return root / "images"


def _write_images(root: Path) -> None:
    import cv2
    from skimage import data

    for name, photo in PHOTOS.items():
        pixels = np.asarray(getattr(data, photo)())
        if pixels.ndim == 2:
            pixels = np.stack([pixels] * 3, axis=-1)
        if name.endswith("small.png"):
            pixels = pixels[::4, ::4]
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        ok, buffer = cv2.imencode(path.suffix, cv2.cvtColor(np.ascontiguousarray(pixels[..., :3]), cv2.COLOR_RGB2BGR))
        path.write_bytes(buffer.tobytes())
    good = (root / "train/cat/chelsea.jpg").read_bytes()
    (root / "train/cat/cut-off.jpg").write_bytes(good[: len(good) // 3])  # truncated: image_corrupt
    (root / "train/space/empty.png").write_bytes(b"")  # empty file
    (root / "train/notes.txt").write_text("not an image\n")  # unexpected_file
    rows = [{"file_name": name.split("/", 1)[1], "caption": text} for name, text in CAPTIONS.items()]
    rows.append({"file_name": "cat/gone.jpg", "caption": "A file that is not there."})  # file_missing
    lines = [json.dumps(row) for row in rows] + ['{"file_name": "cat/chelsea-small.png", "caption": ']  # metadata_invalid
    (root / "train" / "metadata.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _write_audio(root: Path) -> None:
    import soundfile

    from mmfeat.pipelines.sample_media import synth_speech

    rng = np.random.default_rng(7)
    rows = []
    for split, speakers in (("train", ("alice", "bob")), ("test", ("carol",))):
        for speaker in speakers:
            for number in range(2):
                path = root / split / speaker / f"{speaker}-{number}.wav"
                path.parent.mkdir(parents=True, exist_ok=True)
                f0 = float(rng.uniform(100, 220))
                soundfile.write(path, synth_speech(rng, f0=f0, seconds=float(rng.uniform(1.0, 2.0))), 16000, subtype="PCM_16")
                if split == "train":
                    rows.append({"file_name": f"{speaker}/{path.name}", "transcription": f"{speaker} says number {number}"})
    good = (root / "train/alice/alice-0.wav").read_bytes()
    (root / "train/alice/cut.wav").write_bytes(good[: len(good) // 2])  # header says more: audio_truncated
    (root / "train/bob/readme.md").write_text("not audio\n")  # unexpected_file
    with (root / "train" / "metadata.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["file_name", "transcription"])
        writer.writeheader()
        writer.writerows(rows)
