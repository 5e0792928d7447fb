"""A LibriSpeech-layout sample: speech-like synthetic audio, real-format transcripts, and broken cases.

The audio is a glottal-pulse-like harmonic source with a moving formant envelope and a syllable-rate
amplitude contour, framed by silence (so trimming has work to do); it is deterministic per seed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile

from mmfeat.pipelines.sample_media import synth_speech

WORDS = tuple(
    (
        "THE OLD MAN WALKED SLOWLY DOWN TO THE RIVER WHERE A SMALL BOAT WAS WAITING FOR HIM IN THE "
        "MORNING LIGHT AND SHE SAID THAT NOBODY HAD EVER SEEN SUCH A STRANGE BIRD BEFORE WHILE THE "
        "CHILDREN LAUGHED UNDER GREEN TREES NEAR HIS QUIET HOUSE"
    ).split()
)

SPEAKERS_TXT = """\
; Each line is: ID | SEX | SUBSET | MINUTES | NAME
;ID    |SEX| SUBSET           |MINUTES| NAME
19     | F | train-clean-100  | 25.19 | Kara Shallenberg
103    | F | train-clean-100  | 25.23 | Karen Savage
1034   | M | train-clean-100  | 25.03 | Kevin O'Coin
60     | M | train-clean-100  | 20.18 | |CBW|Simon
251    | M | dev-clean        |  8.01 | Mark Nelson
"""


def _sentence(rng: np.random.Generator) -> str:
    return " ".join(rng.choice(WORDS, size=int(rng.integers(4, 11))))


def _write_chapter(
    root: Path,
    subset: str,
    speaker: int,
    chapter: int,
    count: int,
    rng: np.random.Generator,
    seconds: tuple[float, float] = (1.2, 3.0),
) -> Path:
    folder = root / subset / str(speaker) / str(chapter)
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    f0 = 110.0 + (speaker % 7) * 25.0
    for utt in range(count):
        utt_id = f"{speaker}-{chapter}-{utt:04d}"
        soundfile.write(
            folder / f"{utt_id}.flac", synth_speech(rng, f0=f0, seconds=float(rng.uniform(*seconds))), 16000, subtype="PCM_16"
        )
        lines.append(f"{utt_id} {_sentence(rng)}")
    (folder / f"{speaker}-{chapter}.trans.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def _write_broken_chapter(root: Path, rng: np.random.Generator) -> None:
    """Chapter 19/198: two good utterances, then one of each problem the reader and cleaner must handle."""
    folder = _write_chapter(root, "train-clean-100", 19, 198, 2, rng)
    trans = folder / "19-198.trans.txt"
    good = trans.read_bytes()
    speech = synth_speech(rng, f0=180.0, seconds=2.0)
    soundfile.write(folder / "19-198-0002.flac", speech, 16000)
    (folder / "19-198-0003.flac").write_bytes(b"")  # zero bytes
    (folder / "19-198-0004.flac").write_bytes((folder / "19-198-0002.flac").read_bytes()[:3000])  # truncated
    (folder / "19-198-0005.flac").write_text("this is a text file, not audio\n")  # wrong content
    soundfile.write(folder / "19-198-0006.flac", np.zeros(32000, np.float32), 16000)  # digital silence
    square = np.sign(np.sin(2 * np.pi * 220 * np.arange(32000) / 16000)).astype(np.float32)
    soundfile.write(folder / "19-198-0007.flac", square, 16000)  # clipped throughout
    soundfile.write(folder / "19-198-0008.flac", speech[4800:8000], 16000)  # 0.2 s: too short
    stereo_8k = np.stack([speech[::2], 0.5 * speech[::2]], axis=1)
    soundfile.write(folder / "19-198-0009.flac", stereo_8k, 8000, subtype="PCM_24")  # 8 kHz stereo 24-bit: fine
    soundfile.write(folder / "19-198-0011.flac", speech, 16000)  # no transcript line
    soundfile.write(folder / "19-198-0012.flac", speech, 16000)  # transcript not UTF-8
    soundfile.write(folder / "19-198-0013.flac", speech, 16000)  # transcript empty after normalisation
    lines = [f"19-198-{i:04d} {_sentence(rng)}".encode() for i in range(2, 10)]
    lines.append(b"19-198-0010 THIS LINE HAS NO AUDIO FILE")
    lines.append(b"THIS LINE HAS NO UTTERANCE ID")
    lines.append(b"19-198-0012 CAF\xe9 IN LATIN ONE")
    lines.append("19-198-0013 \u200b\u200b".encode())
    trans.write_bytes(good + b"\n".join(lines) + b"\n")
    (root / "train-clean-100" / "19" / "notes.txt").write_text("a stray file outside the layout\n")


def write_librispeech_sample(
    out_dir: Path,
    *,
    chapters: int = 3,
    utterances_per_chapter: int = 4,
    seconds: tuple[float, float] = (1.2, 3.0),
    broken: bool = True,
    seed: int = 0,
) -> Path:
    """Write ``out_dir/LibriSpeech`` (train-clean-100 + dev-clean) and return that folder.

    Good utterances last ``seconds`` (uniform range) before the 0.3 s silences on each side.
    """
    rng = np.random.default_rng(seed)
    root = Path(out_dir) / "LibriSpeech"
    root.mkdir(parents=True, exist_ok=True)
    (root / "SPEAKERS.TXT").write_text(SPEAKERS_TXT, encoding="utf-8")
    speakers = [(103, 1240), (1034, 121119), (60, 121082)]
    for i in range(chapters):
        speaker, chapter = speakers[i % len(speakers)]
        _write_chapter(root, "train-clean-100", speaker, chapter + i // len(speakers), utterances_per_chapter, rng, seconds)
    _write_chapter(root, "dev-clean", 251, 136532, max(2, utterances_per_chapter // 2), rng, seconds)
    if broken:
        _write_broken_chapter(root, rng)
    return root
