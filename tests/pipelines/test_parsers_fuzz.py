"""Fuzzing the parsers: no input raises out of them, and every input becomes records or rejects that can be written.

Hypothesis draws LibriSpeech ``trans.txt`` bytes, IEMOCAP transcripts and EmoEvaluation files, COCO JSON
entries of any shape, and clip-manifest rows (CSV and JSONL), with odd text: lone surrogates, control
characters, path separators, huge numbers. Derandomised, so CI sees the same examples every run.
"""

import json
import math
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmfeat.pipelines.datasets.coco import source as coco
from mmfeat.pipelines.datasets.iemocap import IemocapConfig
from mmfeat.pipelines.datasets.iemocap import source as iemocap
from mmfeat.pipelines.datasets.librispeech import source as librispeech
from mmfeat.pipelines.sources import dialog_manifest
from mmfeat.pipelines.sources.guard import checked, split_problem
from mmfeat.schemas.records import Reject

FUZZ = settings(max_examples=150, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
ODD_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=40)  # surrogates and controls included
NUMBERS = st.one_of(st.integers(-(2**70), 2**70), st.floats(allow_nan=True, allow_infinity=True), st.none())
JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), NUMBERS, ODD_TEXT),
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(ODD_TEXT, children, max_size=4)),
    max_leaves=12,
)


def assert_writable(outcomes):
    """What the pipeline gets once the guard has seen each element: records with a usable split, or rejects."""
    for outcome in map(checked, outcomes):
        assert split_problem(outcome.split) is None
        if isinstance(outcome, Reject):
            for value in (outcome.sample_id, outcome.split, outcome.source_path, outcome.detail):
                value.encode("utf-8")


TEXT_LINES = st.lists(ODD_TEXT, max_size=6).map(lambda lines: "\n".join(lines).encode("utf-8", "surrogatepass"))


@FUZZ
@given(st.binary(max_size=300) | TEXT_LINES)
def test_librispeech_transcript_lines(data):
    for lineno, utt_id, text, problem in librispeech.parse_transcript(data):
        assert lineno >= 1 and (problem or (utt_id and text is not None))


TRANSCRIPT_LINE = st.builds(
    "{} [{}-{}]: {}".format,
    st.one_of(st.just("Ses01F_impro01_F000"), st.just("Ses02M_script03_F007"), ODD_TEXT),
    st.one_of(st.floats(0, 1e6).map(str), ODD_TEXT),
    st.one_of(st.floats(0, 1e6).map(str), ODD_TEXT),
    ODD_TEXT,
)
LABEL_LINE = st.builds(
    "[{} - {}]\t{}\t{}\t[{}, {}, {}]".format,
    *(st.floats(-1e9, 1e9).map(str) for _ in range(2)),
    st.one_of(st.just("Ses01F_impro01_F000"), ODD_TEXT),
    ODD_TEXT,
    *(st.one_of(st.floats(allow_nan=False).map(str), ODD_TEXT) for _ in range(3)),
)


@FUZZ
@given(st.lists(TRANSCRIPT_LINE | ODD_TEXT, max_size=8), st.lists(LABEL_LINE | ODD_TEXT, max_size=8))
def test_iemocap_dialog_files(tmp_path_factory, transcript_lines, label_lines):
    root = tmp_path_factory.mktemp("iemocap")
    base = root / "Session1" / "dialog"
    for folder in ("transcriptions", "EmoEvaluation", "avi/DivX", "wav"):
        (base / folder).mkdir(parents=True)
    (base / "transcriptions" / "Ses01F_impro01.txt").write_bytes("\n".join(transcript_lines).encode("utf-8", "surrogatepass"))
    (base / "EmoEvaluation" / "Ses01F_impro01.txt").write_bytes("\n".join(label_lines).encode("utf-8", "surrogatepass"))
    (base / "avi" / "DivX" / "Ses01F_impro01.avi").write_bytes(b"RIFF")
    listing = iemocap.discover(root)
    config = IemocapConfig()
    outcomes = [
        out
        for unit in listing.units
        for out in iemocap.parse_unit(
            unit, root=str(root), rules=config.rules(), test_sessions=config.test_sessions, dev_sessions=config.dev_sessions
        )
    ]
    assert_writable(outcomes)
    lines = sum(1 for line in "\n".join(transcript_lines).splitlines() if line.strip().lstrip("\ufeff"))
    per_transcript_line = [o for o in outcomes if not (isinstance(o, Reject) and "#label" in o.sample_id)]
    assert len(per_transcript_line) >= lines  # every transcript line ends somewhere


@FUZZ
@given(st.lists(JSON, max_size=5), st.lists(JSON, max_size=5), st.lists(JSON, max_size=5))
def test_coco_entries_of_any_shape(tmp_path_factory, images, captions, instances):
    root = tmp_path_factory.mktemp("coco")
    (root / "val").mkdir()
    captions_file, instances_file = root / "captions.json", root / "instances.json"
    captions_file.write_text(json.dumps({"images": images, "annotations": captions}), encoding="utf-8", errors="surrogatepass")
    instances_file.write_text(json.dumps({"categories": instances, "annotations": instances}), encoding="utf-8")
    try:
        outcomes = coco.read_split(
            "val", captions_file, instances_file, images_dir=root / "val", root=root, require_captions=True
        )
    except coco.LayoutError:
        return  # a file that is not valid JSON stops the run before it starts, with a message
    outcomes = [o for unit in outcomes for o in coco.parse_unit(unit)]
    assert_writable(outcomes)
    assert len(outcomes) >= len(images)  # every image entry is a record or a reject


ROW = st.fixed_dictionaries(
    {"utterance_id": ODD_TEXT, "video": st.one_of(st.just("a.mp4"), ODD_TEXT), "start": NUMBERS | ODD_TEXT,
     "end": NUMBERS | ODD_TEXT, "text": ODD_TEXT, "label": ODD_TEXT},
    optional={"split": ODD_TEXT | st.just("../../x") | st.just("/abs"), "session": NUMBERS | ODD_TEXT, "audio": ODD_TEXT,
              "valence": NUMBERS | ODD_TEXT},
)  # fmt: skip


@FUZZ
@given(st.lists(ROW | JSON, max_size=6), st.booleans())
def test_clip_manifest_rows(tmp_path_factory, rows, as_csv):
    folder = tmp_path_factory.mktemp("clips")
    (folder / "a.mp4").write_bytes(b"x")
    if as_csv:
        import csv
        import io

        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=[*dialog_manifest.REQUIRED, "split", "session", "audio", "valence"])
        writer.writeheader()
        dicts = [r for r in rows if isinstance(r, dict) and set(r) <= set(writer.fieldnames)]
        for row in dicts:
            writer.writerow({k: v for k, v in row.items()})
        path, count = folder / "m.csv", len(dicts)
        path.write_bytes(buffer.getvalue().encode("utf-8", "surrogatepass"))
    else:
        path, count = folder / "m.jsonl", len(rows)
        text = "\n".join(json.dumps(r) if not (isinstance(r, float) and math.isnan(r)) else "NaN" for r in rows)
        path.write_text(text + "\n", encoding="utf-8")
    try:
        units = dialog_manifest.read_manifest_rows(path)
    except dialog_manifest.LayoutError:
        return  # an unreadable manifest stops the run before it starts
    outcomes = [
        out
        for unit in units
        for out in dialog_manifest.parse_rows(unit, root=str(folder), apply_label=lambda x: x, split_of_session=lambda s: "train")
    ]
    assert_writable(outcomes)
    assert len(outcomes) == sum(len(unit.rows) for unit in units) and (as_csv or len(outcomes) <= count)


def test_the_fuzzed_parsers_are_the_real_ones():
    from mmfeat.pipelines.registry import DATASETS

    for module in (librispeech, coco, iemocap):  # each dataset's own source.py, the one its wiring parses with
        assert Path(module.__file__).name == "source.py" and Path(module.__file__).parent.name in DATASETS
