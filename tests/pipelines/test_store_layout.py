"""The store's layout (schema version 3.0): rejects as JSON Lines that read back exactly, the layout of 2.0
still read, and a resume into a 2.0 folder refused with what to do."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mmfeat.pipelines.resume import ResumeError, start_run
from mmfeat.schemas.fields import REJECTS_SCHEMA
from mmfeat.schemas.rejects import read_rejects, rejects_jsonl

HOSTILE = [
    {"sample_id": "a\u2028b", "split": "train", "view": None, "source_path": 'x\\y "q".flac', "stage": "clean_audio",
     "reason": "audio_undecodable", "detail": "line\nnext\u0085 \udc80".encode("utf-8", "backslashreplace").decode()},
    {"sample_id": "é/漢字", "split": "train", "view": 3, "source_path": "", "stage": "write", "reason": "row_unwritable",
     "detail": "\x00\t"},
]  # fmt: skip


def test_rejects_lines_read_back_exactly_and_one_reject_is_one_line(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_bytes(rejects_jsonl(HOSTILE))
    assert len(path.read_text(encoding="utf-8").splitlines()) == 2  # str.splitlines also splits at U+2028 and U+0085
    table = read_rejects(path)
    assert table.schema.equals(REJECTS_SCHEMA) and table.to_pylist() == HOSTILE
    assert read_rejects(path, columns=["reason"]).column_names == ["reason"]


def test_rejects_of_a_2_0_store_are_parquet_and_still_read(tmp_path):
    table = pa.Table.from_pylist(HOSTILE, schema=REJECTS_SCHEMA)
    pq.write_table(table, tmp_path / "r.parquet")
    assert read_rejects(tmp_path / "r.parquet").to_pylist() == HOSTILE


def test_a_resume_into_a_store_of_the_old_layout_is_refused(tmp_path):
    identity = {"dataset": "coco", "config_sha256": "c", "inputs_sha256": "i"}  # what 2.0 wrote: no schema_version
    (tmp_path / "_run.json").write_text(json.dumps(identity))
    with pytest.raises(ResumeError, match="schema version 2.0.*--overwrite"):
        start_run(tmp_path, dataset="coco", config_sha256="c", inputs_sha256="i", resume=True)


def test_a_model_folder_has_one_digest_of_its_files_names_and_bytes(tmp_path):
    from mmfeat.pipelines.transforms.encode import weights_sha256

    folder = tmp_path / "model"
    (folder / "sub").mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "sub" / "model.safetensors").write_bytes(b"w" * 10)
    first = weights_sha256(folder)
    assert first == weights_sha256(str(folder)) and len(first) == 64
    (folder / "sub" / "model.safetensors").write_bytes(b"x" * 10)
    assert weights_sha256(folder) != first and weights_sha256(tmp_path / "none") is None and weights_sha256(None) is None
