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
