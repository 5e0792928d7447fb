import threading

import pytest

from mmfeat.pipelines.transforms import warm_up as warm
from mmfeat.pipelines.transforms.audio import CleanAudio, ExtractMfcc
from mmfeat.pipelines.transforms.video import CleanSegmentAudio
from mmfeat.runners.config import load_config


class Counting:
    """A stage stand-in that counts its warm-ups (per class, as the warm-up keys them)."""

    calls: list[str] = []

    def warm_up(self) -> None:
        self.calls.append(type(self).__name__)


class Failing(Counting):
    def warm_up(self) -> None:
        super().warm_up()
        raise RuntimeError("on purpose")


class Later(Counting):
    pass


@pytest.fixture
def fresh_process(monkeypatch):
    monkeypatch.setattr(warm, "_STARTED", set())
    Counting.calls = []


def test_each_stage_type_warms_up_once_per_process_in_the_background(fresh_process):
    first = warm.start_warm_up([Failing(), Later(), object()])  # a failing warm-up does not stop the others
    assert isinstance(first, threading.Thread) and first.daemon
    first.join(5)
    assert Counting.calls == ["Failing", "Later"]
    assert warm.start_warm_up([Failing(), Later()]) is None  # another bundle's setup in the same process
    assert Counting.calls == ["Failing", "Later"]


@pytest.mark.parametrize("stage", ["clean_audio", "clean_segment_audio", "extract_mfcc"])
def test_the_audio_stages_warm_up_without_error(stage):
    """Failures are swallowed at run time, so here each warm-up must run through (it reaches librosa's code)."""
    config = load_config("librispeech", overrides=[])
    stages = {
        "clean_audio": lambda: CleanAudio(config.audio),
        "clean_segment_audio": lambda: CleanSegmentAudio(config.audio),
        "extract_mfcc": lambda: ExtractMfcc(config.mfcc, config.audio.sample_rate),
    }
    stages[stage]().warm_up()
