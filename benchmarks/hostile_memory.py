"""Peak memory on huge inputs: each case cleaned in a fresh process, against that process's bare imports.

    python benchmarks/hostile_memory.py [--data DIR] [--video]

Cases (generated once under --data): an hour of FLAC at 16 kHz and at 8 kHz (resampled to 16 kHz), cleaned
with the default ``audio.max_duration_s`` (rejected from the header) and with ``max_duration_s=3600`` (decoded,
cleaned whole, then MFCC with deltas and log-mel); a 40-megapixel 16-bit RGBA PNG; with ``--video``, the frames of 171 four-second
utterances of a 20-minute 640x480 B-frame AVI (2 minutes to generate). Target (issue 23): peak RSS at most
1.2 GB for each, with the output of the code it replaced where that was right.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np

BASELINE = "import mmfeat.extractors.audio, mmfeat.extractors.image, mmfeat.extractors.video, librosa, cv2, av"
CLEAN_AUDIO = """
from mmfeat.extractors.audio import AudioCleanConfig, clean_audio
from mmfeat.extractors.errors import Rejected
from mmfeat.extractors.spectral import MfccConfig, mfcc_features
try:
    clean = clean_audio(open({path!r}, "rb").read(), AudioCleanConfig(max_duration_s={max_s}))
    mfcc_features(clean.waveform, clean.sample_rate, MfccConfig(deltas=2, log_mel=True))
except Rejected as err:
    print(err.reason, end=" ")
"""
CLEAN_IMAGE = """
from mmfeat.extractors.image import ImageCleanConfig, check_image, decode_image
data, config = open({path!r}, "rb").read(), ImageCleanConfig()
decode_image(data, check_image(data, config), config, min_side_needed=224)
"""
VIDEO_FRAMES = """
import numpy as np
from mmfeat.extractors.video import FramesConfig, VideoSource
source = VideoSource({path!r})
for start in np.arange(0.0, source.duration_s - 5, 7.0):
    source.frames(start, start + 4.0, FramesConfig())
source.close()
"""


def peak_mb(code: str) -> tuple[float, str]:
    """Peak RSS (MB) of a fresh interpreter that runs the baseline imports, then ``code``."""
    script = f"{BASELINE}\n{code}\nimport resource\nprint(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout.split()
    return float(out[-1]), " ".join(out[:-1])


def write_inputs(folder: Path, video: bool) -> dict[str, Path]:
    import cv2
    import soundfile

    folder.mkdir(parents=True, exist_ok=True)
    paths = {"hour16k": folder / "hour16k.flac", "hour8k": folder / "hour8k.flac", "png": folder / "40mp_rgba16.png"}
    rng = np.random.default_rng(0)
    for rate, key in ((16000, "hour16k"), (8000, "hour8k")):
        if not paths[key].exists():
            with soundfile.SoundFile(paths[key], "w", samplerate=rate, channels=1, format="FLAC", subtype="PCM_16") as f:
                for _ in range(60):
                    f.write((0.1 * rng.standard_normal(rate * 60)).astype(np.float32))
    if not paths["png"].exists():
        image = np.zeros((5000, 8000, 4), np.uint16)
        image[..., :3] = np.linspace(0, 65535, 8000, dtype=np.uint16)[None, :, None]
        image[..., 3] = 40000
        cv2.imwrite(str(paths["png"]), image, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if video:
        paths["video"] = folder / "dialog20.avi"
        if not paths["video"].exists():
            _write_video(paths["video"])
    return paths


def _write_video(path: Path, fps: int = 30, seconds: int = 1200) -> None:
    import av

    with av.open(str(path), "w", format="avi") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 640, 480, "yuv420p"
        stream.codec_context.max_b_frames, stream.codec_context.gop_size = 2, 60
        image = np.zeros((480, 640, 3), np.uint8)
        for index in range(fps * seconds):
            image[:, :, 0] = index % 256
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        container.mux(stream.encode(None))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("/tmp/mmfeat-hostile-memory"))
    parser.add_argument("--video", action="store_true", help="also the 20-minute video (2 minutes to generate)")
    args = parser.parse_args()
    paths = write_inputs(args.data, args.video)
    baseline, _ = peak_mb("")
    cases = [
        ("1 h FLAC 16 kHz, max_duration_s=40", CLEAN_AUDIO.format(path=str(paths["hour16k"]), max_s=40.0)),
        ("1 h FLAC 16 kHz, max_duration_s=3600", CLEAN_AUDIO.format(path=str(paths["hour16k"]), max_s=3600.0)),
        ("1 h FLAC 8 kHz -> 16 kHz, max_duration_s=3600", CLEAN_AUDIO.format(path=str(paths["hour8k"]), max_s=3600.0)),
        ("40 MP 16-bit RGBA PNG", CLEAN_IMAGE.format(path=str(paths["png"]))),
    ]
    if args.video:
        cases.append(("20 min 640x480 B-frame AVI, 171 clips", VIDEO_FRAMES.format(path=str(paths["video"]))))
    print(f"| case | peak RSS (MB) | above the bare imports ({baseline:.0f} MB) | outcome |\n|---|---|---|---|")
    for name, code in cases:
        peak, outcome = peak_mb(code)
        print(f"| {name} | {peak:.0f} | {peak - baseline:.0f} | {outcome or 'cleaned'} |")


if __name__ == "__main__":
    main()
