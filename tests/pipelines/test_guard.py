"""What every parsed element must pass (``pipelines.sources.guard``): safe split names, writable text, no unit
that crashes the run."""

import pytest

from mmfeat.pipelines.sources.guard import INVALID_SPLIT, checked, guarded_parse, split_problem
from mmfeat.schemas.records import AudioUtterance, Reject


def utterance(split="train", transcript="hello", sample_id="1-2-3"):
    return AudioUtterance(sample_id, split, "a/1-2-3.flac", "/data/a/1-2-3.flac", transcript, "1", "2")


@pytest.mark.parametrize("split", ["train", "train-clean-100", "val2017", "dev_1", "tëst", "a.b"])
def test_ordinary_splits_pass(split):
    assert split_problem(split) is None
    assert checked(utterance(split)) == utterance(split)


@pytest.mark.parametrize(
    "split",
    ["../../s1", "/tmp/x", "a/b", "a\\b", "..", ".", ".hidden", "", " train", "x\x00y", "tab\there", "x" * 101, "\ud83d", 5],
)
def test_a_split_that_is_not_one_safe_path_component_becomes_a_reject(split):
    out = checked(utterance(split))
    assert isinstance(out, Reject) and out.reason == "split_name_invalid" and out.split == INVALID_SPLIT
    assert out.sample_id == "1-2-3"


def test_a_lone_surrogate_in_any_text_field_is_a_reject_and_rejects_are_made_writable():
    out = checked(utterance(transcript="caf\udce9 ok"))
    assert isinstance(out, Reject) and out.reason == "text_invalid_unicode" and "transcript" in out.detail
    reject = checked(Reject("id\ud83d", "../x", "p", "read", "r", "detail \udc80"))
    assert reject.split == INVALID_SPLIT and reject.sample_id == "id\\ud83d" and "\\udc80" in reject.detail
    for value in (reject.sample_id, reject.detail, reject.split):
        value.encode("utf-8")


def test_a_unit_whose_parsing_raises_ends_in_one_reject_after_what_it_yielded():
    def parse(unit):
        yield utterance()
        raise PermissionError(13, "Permission denied")

    class Unit:
        path = "LibriSpeech/train/19"
        subset = "train"

    out = list(guarded_parse(parse, Unit()))
    assert out[0] == utterance()
    assert (out[1].reason, out[1].split, out[1].sample_id) == ("unreadable", "train", "LibriSpeech/train/19#unit")
    assert "Permission denied" in out[1].detail

    def buggy(unit):
        raise KeyError("x")
        yield

    (only,) = guarded_parse(buggy, Unit())
    assert only.reason == "parse_failed" and "KeyError" in only.detail


def test_a_units_reject_names_it_relative_to_the_dataset_root():
    from mmfeat.pipelines.sources.guard import unit_label

    class Unit:
        path = "/data/LibriSpeech/train/19/198"
        root = "/data/LibriSpeech"

    assert unit_label(Unit()) == "train/19/198"
