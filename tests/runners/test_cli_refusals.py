"""Mistakes on the command line: one clear line and exit 2, before anything is written or deleted."""

import pytest

from mmfeat.runners.cli import main
from tests.runners.test_output_folder import finished_run


@pytest.fixture(scope="module")
def coco_input(tmp_path_factory):
    from mmfeat.runners.samples.coco import write_coco_sample

    return write_coco_sample(tmp_path_factory.mktemp("coco_in"))


def run(capsys, *argv):
    code = main(list(argv))
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--ovewrite"], "unknown flag --ovewrite (did you mean --overwrite?)"),
        (["--direct_num_workrs=2"], "unknown flag --direct_num_workrs (did you mean --direct_num_workers?)"),
        (["--runner", "flnk"], "--runner flnk: not a runner Beam knows"),
        (["--overwrite", "--runner", "flnk"], "--runner flnk: not a runner Beam knows"),
        (["--overwrite", "--set", "audio.resample_type=bogus"], "resample_type must be one of"),
        (["--overwrite", "--set", "text.language=zz"], "text.language: 'zz'"),
        (["--overwrite", "--set", "augment.views=100000"], "views must be within 0..64"),
        (["--overwrite", "--set", "image.size=100000"], "size must be within 8..4096"),
        (["--overwrite", "--set", "video.num_frames=100000"], "num_frames and video.max_frames must be <= 512"),
        (["--overwrite", "--set", "audio.sample_rate=100000000"], "sample_rate must be within"),
        (["--overwrite", "--set", "encode.image.weights=/nonexistent/model.pt"], "encode.image.weights: cannot load"),
        (["--overwrite", "--resume"], "--resume and --overwrite exclude each other"),
    ],
)
def test_a_refused_run_leaves_a_finished_output_as_it_was(capsys, tmp_path, coco_input, extra, message):
    out = finished_run(tmp_path / "out" / "coco")
    code, err = run(capsys, "run", "coco", "--input", str(coco_input), "--output", str(tmp_path / "out"), *extra)
    assert code == 2 and message in err, err
    assert len(err.strip().splitlines()) == 1, err  # one line, no traceback
    assert (out / "train" / "train-00000-of-00001.parquet").read_bytes() == b"old rows"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["coco"]


def test_an_output_that_is_a_file_is_refused(capsys, tmp_path, coco_input):
    (tmp_path / "out").write_text("a file")
    code, err = run(capsys, "run", "coco", "--input", str(coco_input), "--output", str(tmp_path / "out"))
    assert code == 2 and "is not a folder" in err


def test_a_garbage_torchscript_file_is_refused_before_the_run(capsys, tmp_path, coco_input):
    (tmp_path / "model.pt").write_bytes(b"not a TorchScript archive")
    weights = tmp_path / "model.pt"
    settings = ["encode.image.name=torchscript_image", f"encode.image.weights={weights}", "encode.image.output_dim=8"]
    argv = [arg for setting in settings for arg in ("--set", setting)]
    code, err = run(capsys, "run", "coco", "--input", str(coco_input), "--output", str(tmp_path / "out"), *argv)
    assert code == 2 and "encode.image.weights: cannot load" in err and not (tmp_path / "out" / "coco").exists()


def test_a_missing_extra_is_named_in_one_line(capsys, tmp_path, monkeypatch):
    import importlib.util

    out = finished_run(tmp_path / "out" / "coco")
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name, *a))
    code, err = run(capsys, "report", str(out))
    assert code == 2 and "pip install 'mmfeat[report]'" in err and len(err.strip().splitlines()) == 1


def test_dask_runner_without_dask_is_named_in_one_line(capsys, tmp_path, coco_input, monkeypatch):
    import sys

    for name in [m for m in sys.modules if m == "dask" or m.startswith(("dask.", "apache_beam.runners.dask"))]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "dask", None)  # import dask raises ImportError, as where it is not installed
    code, err = run(capsys, "run", "coco", "--input", str(coco_input), "--output", str(tmp_path / "out"), "--runner", "dask")
    assert code == 2 and "pip install 'mmfeat[dask]'" in err and len(err.strip().splitlines()) == 1, err
