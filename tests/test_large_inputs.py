"""Huge inputs (an hour of audio, a 40-megapixel PNG, a 20-minute video): peak memory stays under 1.2 GB.

Not part of the default run (minutes to generate the inputs, 2 GB of memory before the fixes):
``pytest -m large``. ``benchmarks/hostile_memory.py`` prints the same figures as a table.
"""

import importlib.util
from pathlib import Path

import pytest

pytestmark = pytest.mark.large
LIMIT_MB = 1200


@pytest.fixture(scope="module")
def bench():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "hostile_memory.py"
    spec = importlib.util.spec_from_file_location("hostile_memory", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def inputs(bench, tmp_path_factory):
    return bench.write_inputs(tmp_path_factory.mktemp("large"), video=True)


@pytest.mark.parametrize(("key", "max_s", "outcome"), [("hour16k", 40.0, "audio_too_long"), ("hour16k", 3600.0, ""),
                                                        ("hour8k", 3600.0, "")])  # fmt: skip
def test_an_hour_of_audio(bench, inputs, key, max_s, outcome):
    peak, said = bench.peak_mb(bench.CLEAN_AUDIO.format(path=str(inputs[key]), max_s=max_s))
    assert said == outcome and peak < LIMIT_MB


def test_a_40_megapixel_16_bit_rgba_png(bench, inputs):
    assert bench.peak_mb(bench.CLEAN_IMAGE.format(path=str(inputs["png"])))[0] < LIMIT_MB


def test_the_clips_of_a_20_minute_video(bench, inputs):
    assert bench.peak_mb(bench.VIDEO_FRAMES.format(path=str(inputs["video"])))[0] < LIMIT_MB
