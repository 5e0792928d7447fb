"""Mistakes on the command line: one clear line and exit 2, before anything is written or deleted."""

import pytest

from mmfeat.runners.cli import main
from tests.conftest import run_cli
from tests.runners.test_output_folder import finished_run


@pytest.fixture(scope="module")
def coco_input(tmp_path_factory):
    from mmfeat.pipelines.datasets.coco.sample import write_coco_sample

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


def readme_run_commands():
    """Every ``mmfeat run DATASET …`` command in the README's and docs' code blocks, continuation lines joined."""
    import re
    import shlex
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    commands = []
    for path in [root / "README.md", *sorted((root / "docs").rglob("*.md"))]:
        for block in re.findall(r"```bash\n(.*?)```", path.read_text(), re.DOTALL):
            text = re.sub(r"\\\n\s*", " ", block)
            for line in text.splitlines():
                line = line.split("  #")[0].strip()
                if line.startswith("mmfeat run ") and "|" not in line.split()[2]:
                    commands.append(shlex.split(line)[1:])
    return commands


@pytest.mark.parametrize("argv", readme_run_commands(), ids=lambda argv: " ".join(argv[:2] + argv[-2:]))
def test_the_run_commands_the_readme_shows_are_accepted(argv):
    """Their flags (mmfeat's, Beam's, the runner presets') and settings: nothing is refused as unknown."""
    from mmfeat.runners.cli import _RUN_FLAGS, _parser
    from mmfeat.runners.config import load_config
    from mmfeat.runners.presets import check_flags

    args, beam_args = _parser().parse_known_args(argv)
    check_flags(beam_args, mmfeat_flags=_RUN_FLAGS)
    load_config(args.dataset, overrides=args.overrides)


def test_the_readme_shows_run_commands_for_every_runner():
    runners = {arg for argv in readme_run_commands() for flag, arg in zip(argv, argv[1:]) if flag == "--runner"}
    assert runners >= {"dask", "flink", "dataflow"} and len(readme_run_commands()) >= 6


def test_a_run_that_fails_at_start_up_says_so_and_leaves_nothing_behind(tmp_path):
    """A job service that is not there: the job fails before its first shard. No ``_run.json`` or ``_units/``
    stays (a later plain run must not be told to --resume), and the message names the likely fix.

    In a fresh interpreter, not in-process: Beam's PortableRunner leaves its gRPC channel polling the dead
    endpoint on a thread, and a later ``fork()`` in this process (torch's DataLoader workers) then crashes."""
    from mmfeat.pipelines.datasets.librispeech.sample import write_librispeech_sample

    root = write_librispeech_sample(tmp_path / "in")
    argv = ["run", "librispeech", "--input", str(root), "--output", str(tmp_path / "out"), "--no-progress"]
    done = run_cli(*argv, "--runner", "PortableRunner", "--job_endpoint=127.0.0.1:9", "--job_server_timeout=1")
    err = done.stderr
    assert done.returncode == 1 and "start-up failed" in err and "nothing was written" in err and "--job_endpoint" in err
    assert "--resume" not in err and not (tmp_path / "out" / "librispeech").exists()
