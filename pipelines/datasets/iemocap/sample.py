"""An IEMOCAP-layout sample: DivX/MP3 .avi dialogs made of real photos (scikit-image) and speech, with broken cases.

Speech comes from espeak-ng when it is installed (else the LibriSpeech sample's speech-like
synthesis); PyAV writes the .avi files (``pip install 'mmfeat[samples]'``). Session1 is "train",
Session5 is "test" (the default ``iemocap.test_sessions``).

Broken cases, one reject each (or per utterance of a broken dialog): a malformed transcript line,
an utterance without a label line, a label without a transcript line, a label dropped by the
mapping (xxx), a segment past the end of the media, an unreadable video (two utterances), a
dialog with no wav whose video has no audio stream either. One dialog's video has no audio stream: it is still processed from
the dialog wav (``video_has_audio`` = false).
"""

from __future__ import annotations

import itertools
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

FPS = 15
SIZE = (160, 120)
RATE = 16000


@dataclass(frozen=True)
class Line:
    utterance: str  # suffix, e.g. F000
    start: float
    end: float
    text: str
    label: str | None  # None: no EmoEvaluation line
    vad: tuple[float, float, float] = (2.5, 2.5, 2.5)


DIALOGS = {
    # session, dialog -> (seconds, photos, lines, video has audio)
    (1, "Ses01F_impro01"): (
        9.0,
        ("astronaut", "coffee"),
        (
            Line("F000", 0.40, 2.10, "Excuse me.", "neu", (2.5, 2.0, 2.5)),
            Line("M000", 2.50, 4.60, "Do you have your forms?", "exc", (3.5, 3.5, 3.0)),
            Line("F001", 5.00, 7.20, "Yeah, I have them right here.", "ang", (1.5, 4.0, 4.0)),
            Line("M001", 7.40, 8.70, "Okay.", "xxx"),
        ),
        True,
    ),
    (1, "Ses01M_script01_1"): (
        6.0,
        ("chelsea", "rocket"),
        (
            Line("M000", 0.30, 2.40, "The cat is asleep again.", "sad", (2.0, 1.5, 2.0)),
            Line("F000", 2.80, 5.60, "Let it sleep, it had a long day.", "neu"),
            Line("F001", 5.70, 9.50, "This line runs past the end of the recording.", "neu"),
        ),
        False,
    ),
    (5, "Ses05F_impro02"): (
        8.0,
        ("immunohistochemistry", "hubble_deep_field"),
        (
            Line("F000", 0.50, 2.60, "I did not expect to see you here.", "sur", (3.0, 3.5, 2.5)),
            Line("M000", 3.00, 5.20, "Neither did I.", "fru", (2.0, 3.0, 3.0)),
            Line("F001", 5.50, 7.60, "Well, it is good to see you.", "hap", (4.0, 3.0, 3.0)),
            Line("M001", 7.65, 7.95, "Hm.", None),
        ),
        True,
    ),
}


def _speech(text: str, seconds: float, rng: np.random.Generator) -> np.ndarray:
    """float32 speech at RATE: espeak-ng when available, else synthetic speech-like audio."""
    if shutil.which("espeak-ng"):
        import soundfile

        with tempfile.TemporaryDirectory() as tmp:
            wav = Path(tmp) / "speech.wav"
            subprocess.run(["espeak-ng", "-s", "150", "-w", str(wav), text], check=True, capture_output=True)
            samples, rate = soundfile.read(wav, dtype="float32")
        from mmfeat.extractors.audio import resample

        return resample(samples, source_rate=rate, target_rate=RATE)[: int(seconds * RATE)] * 0.7
    from mmfeat.pipelines.sample_media import synth_speech

    return synth_speech(rng, f0=float(rng.uniform(100, 220)), seconds=seconds, sample_rate=RATE)


def _dialog_audio(seconds: float, lines: tuple[Line, ...], rng: np.random.Generator) -> np.ndarray:
    audio = (rng.standard_normal(int(seconds * RATE)) * 1e-3).astype(np.float32)  # room noise
    for line in lines:
        start = int(line.start * RATE)
        if start >= len(audio):
            continue
        speech = _speech(line.text, line.end - line.start, rng)[: len(audio) - start]
        audio[start : start + len(speech)] += speech
    return np.clip(audio, -0.99, 0.99)


def _frames(photos: tuple[str, ...], seconds: float, *, size: tuple[int, int] = SIZE, fps: int = FPS) -> Iterator[np.ndarray]:
    """A slow pan across each photo in turn, so every frame differs from its neighbours (frames made as they are written)."""
    import cv2
    from skimage import data

    width, height = size
    images = []
    for name in photos:
        image = getattr(data, name)()
        image = image if image.ndim == 3 else np.repeat(image[:, :, None], 3, axis=2)
        scale = max(2 * width / image.shape[1], height / image.shape[0])
        images.append(cv2.resize(image[:, :, :3], (round(image.shape[1] * scale), round(image.shape[0] * scale))))
    count = round(seconds * fps)
    for i in range(count):
        image = images[i * len(images) // count]
        x = round((image.shape[1] - width) * (i % (count // len(images))) / max(1, count // len(images)))
        yield np.ascontiguousarray(image[:height, x : x + width])


def write_avi(
    path: Path, frames: Iterable[np.ndarray], audio: np.ndarray | None, *, fps: int = FPS, gap_after: int | None = None
) -> None:
    """DivX (MPEG-4 part 2) video, MP3 audio (when given), in an AVI container, as IEMOCAP ships it.

    The frames' size is the video's. ``gap_after``: frames after this index are stamped 10 frame
    periods later (dropped frames, as in real captures), so frame index x fps no longer gives a frame's time.
    """
    import av

    frames = iter(frames)
    first = next(frames, None)
    if first is None:
        raise ValueError(f"write_avi needs at least one frame for {path.name}")
    with av.open(str(path), mode="w", format="avi") as container:
        video = container.add_stream("mpeg4", rate=fps)
        video.width, video.height, video.pix_fmt = first.shape[1], first.shape[0], "yuv420p"
        video.codec_context.codec_tag = "DX50"
        video.codec_context.time_base = Fraction(1, fps)
        sound = None
        if audio is not None:
            sound = container.add_stream("libmp3lame", rate=RATE, layout="mono")
        for index, image in enumerate(itertools.chain([first], frames)):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = index + (10 if gap_after is not None and index > gap_after else 0)
            frame.time_base = Fraction(1, fps)
            container.mux(video.encode(frame))
        if sound is not None:
            pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int16)
            step = 1152
            for i in range(0, len(pcm), step):
                frame = av.AudioFrame.from_ndarray(pcm[None, i : i + step], format="s16", layout="mono")
                frame.sample_rate, frame.pts = RATE, i
                container.mux(sound.encode(frame))
            container.mux(sound.encode(None))
        container.mux(video.encode(None))


def _transcript(dialog: str, lines: tuple[Line, ...]) -> str:
    out = [f"{dialog}_{line.utterance} [{line.start:08.4f}-{line.end:08.4f}]: {line.text}" for line in lines]
    return "\n".join(out) + "\n"


def _labels(dialog: str, lines: tuple[Line, ...]) -> str:
    out = ["% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]", ""]
    for line in lines:
        if line.label is None:
            continue
        v, a, d = line.vad
        out.append(f"[{line.start:.4f} - {line.end:.4f}]\t{dialog}_{line.utterance}\t{line.label}\t[{v:.4f}, {a:.4f}, {d:.4f}]")
        out += [f"C-E1:\t{line.label.capitalize()};\t()", f"A-E2:\tval {v:.0f}; act {a:.0f}; dom {d:.0f};\t()", ""]
    return "\n".join(out) + "\n"


def write_iemocap_sample(out: str | Path) -> Path:
    """Write the sample under ``out/IEMOCAP`` and return that folder."""
    import soundfile

    root = Path(out) / "IEMOCAP"
    rng = np.random.default_rng(0)
    for (session, dialog), (seconds, photos, lines, has_audio) in DIALOGS.items():
        base = root / f"Session{session}" / "dialog"
        for sub in ("avi/DivX", "wav", "transcriptions", "EmoEvaluation"):
            (base / sub).mkdir(parents=True, exist_ok=True)
        audio = _dialog_audio(seconds, lines, rng)
        soundfile.write(base / "wav" / f"{dialog}.wav", audio, RATE, subtype="PCM_16")
        gap = round(4.0 * FPS) if session == 5 else None  # Session5's video jumps 10 frames after 4 s
        frames = _frames(photos, seconds - (10 / FPS if gap else 0))
        write_avi(base / "avi" / "DivX" / f"{dialog}.avi", frames, audio if has_audio else None, gap_after=gap)
        (base / "transcriptions" / f"{dialog}.txt").write_text(_transcript(dialog, lines), encoding="utf-8")
        (base / "EmoEvaluation" / f"{dialog}.txt").write_text(_labels(dialog, lines), encoding="utf-8")

    s1 = root / "Session1" / "dialog"
    with open(s1 / "transcriptions" / "Ses01F_impro01.txt", "a", encoding="utf-8") as handle:
        handle.write("M: [BREATHING] this line has no id or time\n")  # transcript_malformed_line
    with open(s1 / "EmoEvaluation" / "Ses01F_impro01.txt", "a", encoding="utf-8") as handle:
        handle.write("[9.1000 - 9.9000]\tSes01F_impro01_F002\tneu\t[2.5000, 2.5000, 2.5000]\n")  # transcript_missing
    (s1 / "transcriptions" / "._Ses01F_impro01.txt").write_bytes(b"\x00\x05\x16\x07 macOS resource fork")  # must be ignored

    s5 = root / "Session5" / "dialog"
    broken = "Ses05M_impro03"  # unreadable video: each utterance is rejected with video_unreadable
    lines = (Line("F000", 0.5, 2.0, "Is anybody there?", "neu"), Line("M000", 2.5, 4.0, "Over here.", "neu"))
    (s5 / "avi" / "DivX" / f"{broken}.avi").write_bytes(b"RIFF\x00\x10\x00\x00AVI LIST" + bytes(200))
    soundfile.write(s5 / "wav" / f"{broken}.wav", _dialog_audio(5.0, lines, rng), RATE, subtype="PCM_16")
    (s5 / "transcriptions" / f"{broken}.txt").write_text(_transcript(broken, lines), encoding="utf-8")
    (s5 / "EmoEvaluation" / f"{broken}.txt").write_text(_labels(broken, lines), encoding="utf-8")

    silent = "Ses05F_script02_1"  # no wav and a video without an audio stream: video_has_no_audio
    lines = (Line("F000", 0.5, 2.0, "Where is the sound?", "neu"),)
    write_avi(s5 / "avi" / "DivX" / f"{silent}.avi", _frames(("coffee",), 3.0), None)
    (s5 / "transcriptions" / f"{silent}.txt").write_text(_transcript(silent, lines), encoding="utf-8")
    (s5 / "EmoEvaluation" / f"{silent}.txt").write_text(_labels(silent, lines), encoding="utf-8")
    return root
