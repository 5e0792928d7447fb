from pathlib import Path

import pytest

from mmfeat.pipelines.datasets.librispeech.sample import SPEAKERS_TXT, write_librispeech_sample
from mmfeat.pipelines.datasets.librispeech.source import discover, parse_speakers, parse_transcript, parse_unit
from mmfeat.pipelines.sources.base import LayoutError
from mmfeat.schemas.records import AudioUtterance, Reject


@pytest.fixture(scope="module")
def sample_root(tmp_path_factory) -> Path:
    return write_librispeech_sample(tmp_path_factory.mktemp("ls"))


def parse_all(listing):
    return [out for unit in listing.units for out in parse_unit(unit, listing.speakers)]


def test_parse_speakers_real_format_with_pipe_in_name():
    speakers = parse_speakers(SPEAKERS_TXT)
    assert speakers["60"].name == "|CBW|Simon" and speakers["60"].sex == "M"
    assert speakers["251"].subset == "dev-clean"
    assert ";ID" not in speakers


def test_parse_transcript_lines():
    data = b"\xef\xbb\xbf19-198-0000 NORTHANGER ABBEY\r\n\n19-198-0001 CAF\xe9\nNO ID HERE\n19-198-0002   SPACED  OUT  \n"
    data += b"19-198-0003\tAFTER A TAB\n19-198-0004\n"
    lines = list(parse_transcript(data))
    assert lines[0] == (1, "19-198-0000", "NORTHANGER ABBEY", "")
    assert lines[1][1] == "19-198-0001" and lines[1][2] is None and "not UTF-8" in lines[1][3]
    assert lines[2][1] == "" and "does not start with" in lines[2][3]
    assert lines[3][2] == "SPACED  OUT"
    assert lines[4] == (6, "19-198-0003", "AFTER A TAB", "")
    assert lines[5] == (7, "19-198-0004", "", "")  # an id without text: rejected later as text_empty


def test_discover_from_root_and_from_subset_folder(sample_root):
    full = discover(sample_root)
    assert full.subsets == ("dev-clean", "train-clean-100") and full.root == sample_root.resolve()
    assert discover(sample_root.parent) == full  # the folder that holds LibriSpeech/ works too
    one = discover(sample_root / "dev-clean")
    assert one.subsets == ("dev-clean",) and one.root == sample_root.resolve()  # paths stay relative to LibriSpeech/
    assert {r.source_path for r in parse_all(one)} == {r.source_path for r in parse_all(full) if r.split == "dev-clean"}


def test_subsets_filter_and_unknown_subset(sample_root):
    assert discover(sample_root, subsets=["train-clean-100"]).subsets == ("train-clean-100",)
    with pytest.raises(LayoutError, match="librispeech.subsets: train-other-500 not found"):
        discover(sample_root, subsets=["train-other-500"])


@pytest.mark.parametrize("make", [lambda p: p / "missing", lambda p: p])
def test_wrong_input_says_what_layout_was_expected(tmp_path, make):
    (tmp_path / "photos").mkdir()
    with pytest.raises(LayoutError, match="expected a LibriSpeech folder"):
        discover(make(tmp_path))


def test_records_and_rejects(sample_root):
    out = parse_all(discover(sample_root))
    records = [o for o in out if isinstance(o, AudioUtterance)]
    rejects = {o.sample_id: o.reason for o in out if isinstance(o, Reject)}
    assert rejects == {
        "19-198-0010": "audio_missing",
        "19-198-0011": "transcript_missing",
        "19-198-0012": "transcript_not_utf8",
        "train-clean-100/19/198/19-198.trans.txt:12": "transcript_malformed_line",
        "train-clean-100/19/notes.txt": "unexpected_file",
    }
    first = next(r for r in records if r.sample_id == "103-1240-0000")
    assert first.split == "train-clean-100" and first.speaker_sex == "F" and first.chapter_id == "1240"
    assert first.source_path == "train-clean-100/103/1240/103-1240-0000.flac"
    assert Path(first.audio_path).is_file() and first.transcript.isupper()
    assert len({o.sample_id for o in out}) == len(out)  # ids are unique


def test_missing_transcript_file_rejects_every_audio(tmp_path):
    root = write_librispeech_sample(tmp_path, chapters=1, broken=False)
    trans = next(root.rglob("103-1240.trans.txt"))
    trans.unlink()
    out = parse_all(discover(root, subsets=["train-clean-100"]))
    assert out and all(isinstance(o, Reject) and o.reason == "transcript_missing" for o in out)
    assert "103-1240.trans.txt is missing" in out[0].detail


def test_duplicate_ids_and_foreign_lines(tmp_path):
    root = write_librispeech_sample(tmp_path, chapters=1, utterances_per_chapter=2, broken=False)
    trans = next(root.rglob("103-1240.trans.txt"))
    trans.write_text(trans.read_text() + "103-1240-0000 AGAIN\n999-1-0001 NOT THIS CHAPTER\n")
    rejects = [o for o in parse_all(discover(root, subsets=["train-clean-100"])) if isinstance(o, Reject)]
    assert sorted(r.reason for r in rejects) == ["duplicate_utterance_id", "transcript_malformed_line"]


def test_unreadable_transcript_rejects_the_chapter_instead_of_crashing(tmp_path, monkeypatch):
    root = write_librispeech_sample(tmp_path, chapters=1, utterances_per_chapter=2, broken=False)
    listing = discover(root, subsets=["train-clean-100"])
    real_read = Path.read_bytes

    def failing_read(self):
        if self.name.endswith(".trans.txt"):
            raise PermissionError(13, "Permission denied")
        return real_read(self)

    monkeypatch.setattr(Path, "read_bytes", failing_read)
    out = parse_all(listing)
    assert [(o.sample_id, o.reason) for o in out] == [
        ("103-1240-0000", "transcript_unreadable"),
        ("103-1240-0001", "transcript_unreadable"),
    ]
    assert listing.expected_examples() == 0


def test_folders_that_cannot_be_listed_are_unreadable_rejects(tmp_path, monkeypatch):
    """Root ignores permissions, so the refusal is simulated: listing the folder raises PermissionError."""
    from pathlib import Path

    from mmfeat.pipelines.datasets.librispeech import source

    for chapter in ("19/198", "19/199", "20/300"):
        folder = tmp_path / "LibriSpeech" / "train" / chapter
        folder.mkdir(parents=True)
        speaker, number = chapter.split("/")
        (folder / f"{speaker}-{number}.trans.txt").write_text(f"{speaker}-{number}-0000 HELLO\n")
        (folder / f"{speaker}-{number}-0000.flac").write_bytes(b"fLaC")
    real_iterdir = Path.iterdir
    refused = {tmp_path / "LibriSpeech" / "train" / "19" / "199", tmp_path / "LibriSpeech" / "train" / "20"}

    def iterdir(path):
        if path in refused:
            raise PermissionError(13, "Permission denied", str(path))
        return real_iterdir(path)

    listing = source.discover(tmp_path / "LibriSpeech")
    monkeypatch.setattr(Path, "iterdir", iterdir)
    listing = source.discover(tmp_path / "LibriSpeech")
    outcomes = [o for unit in listing.units for o in source.parse_unit(unit, listing.speakers)]
    assert sorted((o.sample_id, getattr(o, "reason", "record")) for o in outcomes) == [
        ("19-198-0000", "record"),
        ("train/19/199", "unreadable"),
        ("train/20", "unreadable"),
    ]
