"""The one run path (pipelines.plan): checks before a run, the error ceiling, text only where there is text."""

from __future__ import annotations

import apache_beam as beam
import pytest

from mmfeat.pipelines.plan import PlanError, TooManyErrors, check_error_ceiling, plan_run
from mmfeat.runners.config import load_config


def manifest(inputs, **reasons):
    return {"counts": {"input": inputs, "rejected_by_reason": reasons}}


def test_the_error_ceiling_counts_only_unexpected_reasons_and_names_the_dominant_one():
    check_error_ceiling(manifest(10, image_corrupt=9), 0.1)  # data rejects never count
    check_error_ceiling(manifest(10, unexpected_error=1), 0.1)  # at the ceiling, not over it
    with pytest.raises(TooManyErrors, match=r"3 of 10 .*most were encode_failed \(2\)"):
        check_error_ceiling(manifest(10, encode_failed=2, parse_failed=1, audio_truncated=5), 0.1)
    check_error_ceiling(manifest(10, unexpected_error=10), 1.0)  # 1.0: never
    check_error_ceiling(manifest(0), 0.0)


def test_the_ceiling_is_a_bounded_setting():
    from mmfeat.runners.config import ConfigError

    assert load_config("coco").execution.max_error_fraction == 0.1
    with pytest.raises(ConfigError, match="max_error_fraction"):
        load_config("coco", overrides=["execution.max_error_fraction=2"])


def audio_folder(tmp_path, metadata: bytes | None):
    import numpy as np
    import soundfile

    for name in ("a", "b"):
        (tmp_path / "x").mkdir(exist_ok=True)
        soundfile.write(tmp_path / "x" / f"{name}.wav", np.zeros(1600, np.float32), 16000)
    if metadata is not None:
        (tmp_path / "metadata.csv").write_bytes(metadata)
    return tmp_path


def test_a_dataset_without_text_gets_no_text_preparation_and_no_vocabulary(tmp_path):
    plan = plan_run("folder", audio_folder(tmp_path, None), load_config("folder"))
    assert plan.graph.text is None and "tokens" not in plan.graph.schema.names
    pipeline = beam.Pipeline()
    plan.build(pipeline, tmp_path / "out", runner="test")
    labels = {t.full_label.split("/")[0] for t in pipeline.transforms_stack[0].parts}
    assert "WriteManifest" in labels and not labels & {"PrepareText", "Vocabulary", "TokenIds"}
    with_text = plan_run("folder", audio_folder(tmp_path, b"file_name,text\nx/a.wav,hello\n"), load_config("folder"))
    assert with_text.graph.text is not None and "token_ids" in with_text.graph.schema.names


def test_settings_are_checked_before_any_run(tmp_path):
    folder = audio_folder(tmp_path, b"file_name,text\nx/a.wav,hello\n")
    with pytest.raises(PlanError, match="text.language"):
        plan_run("folder", folder, load_config("folder", overrides=["text.language=xx-nope"]))
    with pytest.raises(PlanError, match="vocab.path"):
        plan_run("folder", folder, load_config("folder", overrides=[f"vocab.path={tmp_path / 'none.json'}"]))
    with pytest.raises(PlanError, match="encode"):
        plan_run("folder", folder, load_config("folder", overrides=["encode.audio.name=no_such_encoder"]))
    with pytest.raises(PlanError, match="unknown dataset"):
        plan_run("nope", folder, load_config("folder"))
