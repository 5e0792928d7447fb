import pytest

from mmfeat.pipelines.datasets.iemocap import IemocapConfig
from mmfeat.pipelines.datasets.iemocap import source as iemocap
from mmfeat.pipelines.sources.base import LayoutError
from mmfeat.schemas.records import DialogUtterance, Reject

# Lines as they appear in IEMOCAP: zero-padded times, spaces around the dash in EmoEvaluation, tabs, CRLF.
TRANSCRIPT = (
    "Ses01F_impro01_F000 [006.2901-008.2357]: Excuse me.\r\n"
    "Ses01F_impro01_M000 [007.5712-010.4750]:  Do you have your forms?\n"
    "Ses01F_impro01_MXX0 [010.9-011.2]: [LAUGHTER]\n"
    "\n"
    "M: breathing\n"
)
LABELS = (
    "% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]\n\n"
    "[6.2901 - 8.2357]\tSes01F_impro01_F000\tneu\t[2.5000, 2.5000, 2.5000]\n"
    "C-E2:\tNeutral;\t()\n"
    "A-E3:\tval 3; act 2; dom  2;\t()\n\n"
    "[7.5712 - 10.4750]\tSes01F_impro01_M000\texc\t[3.5000, 4.0000, 3.0000]\n"
    "[12.0 - 13.0] broken line\n"
)


def test_transcript_lines_parse_with_odd_spacing_and_bad_lines_are_reported():
    parsed = list(iemocap.parse_transcript(TRANSCRIPT))
    assert parsed[0] == (1, "Ses01F_impro01_F000", 6.2901, 8.2357, "Excuse me.")
    assert parsed[1][1:] == ("Ses01F_impro01_M000", 7.5712, 10.475, "Do you have your forms?")
    assert parsed[2][1] == "Ses01F_impro01_MXX0"
    assert parsed[3] == (5, "M: breathing")


def test_label_lines_skip_annotators_and_report_malformed_summaries():
    parsed = list(iemocap.parse_labels(LABELS))
    assert parsed[0] == (3, "Ses01F_impro01_F000", "neu", (2.5, 2.5, 2.5))
    assert parsed[1] == (7, "Ses01F_impro01_M000", "exc", (3.5, 4.0, 3.0))
    assert parsed[2] == (8, "[12.0 - 13.0] broken line")


def test_label_mapping_merges_drops_and_keeps():
    rules = IemocapConfig(keep_labels=("neu", "hap", "sad", "ang")).rules()
    assert [rules.apply(x) for x in ("exc", "hap", "xxx", "fru", "ang")] == ["hap", "hap", None, None, "ang"]
    assert IemocapConfig().rules().apply("fru") == "fru"
    with pytest.raises(ValueError):
        IemocapConfig(merge_labels=("exc",))
    with pytest.raises(ValueError):
        IemocapConfig(test_sessions=(1,), dev_sessions=(1,))


def test_splits_are_by_session():
    assert [iemocap.split_of(s, test_sessions=(5,), dev_sessions=(4,)) for s in (1, 4, 5)] == ["train", "dev", "test"]


def write_dialog(root, session=1, dialog="Ses01F_impro01", *, video=True, wav=True):
    base = root / f"Session{session}" / "dialog"
    for sub in ("transcriptions", "EmoEvaluation", "avi/DivX", "wav"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    (base / "transcriptions" / f"{dialog}.txt").write_text(TRANSCRIPT)
    (base / "transcriptions" / f"._{dialog}.txt").write_bytes(b"\x00\x05\x16\x07")
    (base / "EmoEvaluation" / f"{dialog}.txt").write_text(LABELS)
    if video:
        (base / "avi" / "DivX" / f"{dialog}.avi").write_bytes(b"RIFF")
    if wav:
        (base / "wav" / f"{dialog}.wav").write_bytes(b"RIFF")
    return root


def parse_all(root, **kwargs):
    listing = iemocap.discover(root)
    config = IemocapConfig(**kwargs)
    return [
        out
        for unit in listing.units
        for out in iemocap.parse_unit(
            unit,
            root=str(listing.root),
            rules=config.rules(),
            test_sessions=config.test_sessions,
            dev_sessions=config.dev_sessions,
        )
    ]


def test_parse_joins_by_utterance_id_and_rejects_the_rest(tmp_path):
    outcomes = parse_all(write_dialog(tmp_path))
    records = [o for o in outcomes if isinstance(o, DialogUtterance)]
    rejects = {o.sample_id: o.reason for o in outcomes if isinstance(o, Reject)}
    assert [(r.sample_id, r.label, r.raw_label, r.speaker, r.split) for r in records] == [
        ("Ses01F_impro01_F000", "neu", "neu", "Ses01_F", "train"),
        ("Ses01F_impro01_M000", "hap", "exc", "Ses01_M", "train"),
    ]
    assert records[0].source_path == "Session1/dialog/avi/DivX/Ses01F_impro01.avi" and records[0].audio_start_s == 6.2901
    assert rejects == {
        "Ses01F_impro01#labels8": "label_malformed_line",
        "Ses01F_impro01_MXX0": "label_missing",
        "Ses01F_impro01#line5": "transcript_malformed_line",
    }


def test_a_dialog_without_its_emoevaluation_file_says_so_in_every_reject(tmp_path):
    root = write_dialog(tmp_path)
    (root / "Session1" / "dialog" / "EmoEvaluation" / "Ses01F_impro01.txt").unlink()
    rejects = [o for o in parse_all(root) if isinstance(o, Reject) and o.reason == "label_missing"]
    assert len(rejects) == 3 and all("EmoEvaluation/Ses01F_impro01.txt is missing" in r.detail for r in rejects)
    with_file = [o for o in parse_all(write_dialog(tmp_path / "b")) if isinstance(o, Reject) and o.reason == "label_missing"]
    assert [r.detail for r in with_file] == ["no EmoEvaluation line for Ses01F_impro01_MXX0"]


def test_missing_media_are_rejected_per_utterance(tmp_path):
    reasons = {o.reason for o in parse_all(write_dialog(tmp_path, video=False)) if isinstance(o, Reject)}
    assert "video_missing" in reasons
    no_wav = [o for o in parse_all(write_dialog(tmp_path / "b", wav=False)) if isinstance(o, DialogUtterance)]
    assert no_wav and all(r.audio_from_video and r.audio_path.endswith(".avi") for r in no_wav)  # the video's own track


def test_discover_fails_clearly_on_a_wrong_layout(tmp_path):
    with pytest.raises(LayoutError, match="Session<N>/dialog/transcriptions"):
        iemocap.discover(tmp_path)
    write_dialog(tmp_path)
    with pytest.raises(LayoutError, match="no Session3"):
        iemocap.discover(tmp_path, sessions=(3,))
    assert len(iemocap.discover(tmp_path).units) == 1  # the ._ companion file is not a dialog


def test_a_generic_csv_or_jsonl_manifest_lists_utterances_with_rejects_for_bad_rows(tmp_path):
    (tmp_path / "clips").mkdir()
    (tmp_path / "clips" / "a.mp4").write_bytes(b"x")
    (tmp_path / "clips" / "a.wav").write_bytes(b"x")
    csv_text = (
        "utterance_id,video,audio,start,end,text,label,session,speaker\n"
        "u1,clips/a.mp4,clips/a.wav,1.0,2.5,hello there,exc,5,spk1\n"
        "u2,clips/a.mp4,,3.0,4.0,no audio file,neu,1,spk2\n"
        "u3,clips/a.mp4,,5.0,4.0,end before start,neu,1,spk2\n"
        "u4,clips/missing.mp4,,1.0,2.0,gone,neu,1,spk2\n"
        "u5,clips/a.mp4,,1.0,2.0,dropped,xxx,1,spk2\n"
    )
    (tmp_path / "m.csv").write_text(csv_text)
    outcomes = parse_all(tmp_path / "m.csv")
    records = {o.sample_id: o for o in outcomes if isinstance(o, DialogUtterance)}
    rejects = {o.sample_id: o.reason for o in outcomes if isinstance(o, Reject)}
    assert (records["u1"].label, records["u1"].split, records["u1"].audio_from_video) == ("hap", "test", False)
    assert (records["u2"].split, records["u2"].audio_from_video, records["u2"].source_path) == ("train", True, "clips/a.mp4")
    assert rejects == {"u3": "manifest_malformed_row", "u4": "video_missing", "u5": "label_dropped"}

    jsonl = '{"utterance_id": "j1", "video": "clips/a.mp4", "start": 0, "end": 1, "text": "hi", "label": "ang"}\nnot json\n'
    (tmp_path / "m.jsonl").write_text(jsonl)
    outcomes = parse_all(tmp_path / "m.jsonl")
    assert [getattr(o, "reason", o.sample_id) for o in outcomes] == ["j1", "manifest_malformed_row"]
    (tmp_path / "bad.csv").write_text("id,video\n1,a.mp4\n")
    with pytest.raises(LayoutError, match="no column utterance_id"):
        iemocap.discover(tmp_path / "bad.csv")


def test_two_folders_that_name_one_session_are_both_read(tmp_path):
    write_dialog(tmp_path, session=1, dialog="Ses01F_impro01")
    write_dialog(tmp_path, session="01", dialog="Ses01F_impro02")
    (tmp_path / "Session01" / "dialog" / "transcriptions" / "Ses01F_impro02.txt").write_text(
        TRANSCRIPT.replace("impro01", "impro02")
    )
    (tmp_path / "Session01" / "dialog" / "EmoEvaluation" / "Ses01F_impro02.txt").write_text(LABELS.replace("impro01", "impro02"))
    records = [o for o in parse_all(tmp_path) if isinstance(o, DialogUtterance)]
    assert sorted(r.sample_id for r in records) == [
        "Ses01F_impro01_F000", "Ses01F_impro01_M000", "Ses01F_impro02_F000", "Ses01F_impro02_M000",
    ]  # fmt: skip
    assert {r.session for r in records} == {1}


def test_an_utterance_id_of_another_dialog_is_an_id_mismatch_reject(tmp_path):
    root = write_dialog(tmp_path)
    transcript = root / "Session1" / "dialog" / "transcriptions" / "Ses01F_impro01.txt"
    transcript.write_text(TRANSCRIPT + "Ses02M_script03_F007 [001.0-002.0]: Not from this dialog.\n")
    labels = root / "Session1" / "dialog" / "EmoEvaluation" / "Ses01F_impro01.txt"
    labels.write_text(LABELS + "[1.0 - 2.0]\tSes02M_script03_F007\tang\t[1.0, 2.0, 3.0]\n")
    outcomes = parse_all(root)
    assert "Ses02M_script03_F007" not in {o.sample_id for o in outcomes if isinstance(o, DialogUtterance)}
    mismatched = sorted((o.sample_id, o.reason) for o in outcomes if isinstance(o, Reject) and "Ses02M" in o.sample_id)
    assert mismatched == [
        ("Ses02M_script03_F007#Ses01F_impro01", "id_mismatch"),
        ("Ses02M_script03_F007#Ses01F_impro01#label", "id_mismatch"),
    ]


def test_manifest_values_that_cannot_be_columns_or_paths_are_row_rejects(tmp_path):
    (tmp_path / "a.mp4").write_bytes(b"x")
    rows = [
        '{"utterance_id": "big", "video": "a.mp4", "start": 0, "end": 1, "text": "t", "label": "neu", "session": 70000}',
        '{"utterance_id": "frac", "video": "a.mp4", "start": 0, "end": 1, "text": "t", "label": "neu", "session": 1.5}',
        '{"utterance_id": "long", "video": "' + "d" * 5000 + '.mp4", "start": 0, "end": 1, "text": "t", "label": "neu"}',
        '{"utterance_id": "ok", "video": "a.mp4", "start": 0, "end": 1, "text": "t", "label": "neu", "session": 3}',
    ]
    (tmp_path / "m.jsonl").write_text("\n".join(rows) + "\n")
    outcomes = {o.sample_id: o for o in parse_all(tmp_path / "m.jsonl")}
    assert outcomes["big"].reason == outcomes["frac"].reason == "manifest_malformed_row"
    assert outcomes["long"].reason in ("unreadable", "video_missing")
    assert isinstance(outcomes["ok"], DialogUtterance) and outcomes["ok"].session == 3
