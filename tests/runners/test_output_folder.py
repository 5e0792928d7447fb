"""The output folder: refused when unusable, one run at a time, and --overwrite that loses nothing until it succeeds."""

import os

import pytest

from mmfeat.runners.output_folder import OutputError, Replacement, locked, output_problem, recover, replaced_dir


def finished_run(folder):
    folder.mkdir(parents=True)
    (folder / "_manifest.json").write_text("{}")
    (folder / "train").mkdir()
    (folder / "train" / "train-00000-of-00001.parquet").write_bytes(b"old rows")
    return folder


def test_an_output_that_is_a_file_or_under_a_file_is_refused(tmp_path):
    (tmp_path / "file").write_text("x")
    assert "is not a folder" in output_problem(tmp_path / "file" / "coco")
    assert "is not a folder" in output_problem(tmp_path / "file")
    assert output_problem(tmp_path / "new" / "deeper" / "coco") is None


def test_a_read_only_output_folder_is_refused():
    """As an ordinary user (root writes anywhere, so as root the check runs as ``nobody`` through setpriv)."""
    import shutil
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    folder = Path(tempfile.mkdtemp(prefix="mmfeat-ro-"))
    try:
        folder.chmod(0o755)
        (folder / "ro").mkdir(mode=0o555)
        (folder / "ro").chmod(0o555)
        if os.geteuid() != 0:
            assert "not writable" in output_problem(folder / "ro" / "coco")
            return
        if shutil.which("setpriv") is None:
            pytest.skip("root, and no setpriv to check as another user")
        target = str(folder / "ro" / "coco")
        code = (
            "from pathlib import Path; from mmfeat.runners.output_folder import output_problem; "
            f"print(output_problem(Path({target!r})))"
        )
        as_nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c", code]
        out = subprocess.run(as_nobody, capture_output=True, text=True, cwd="/")
        if out.returncode != 0:  # this checkout or its venv is not readable by nobody
            pytest.skip(f"nobody cannot run this checkout's Python: {out.stderr.strip().splitlines()[-1:]}")
        assert "is not writable by this user" in out.stdout
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_a_second_run_into_the_same_folder_is_refused_while_the_first_holds_it(tmp_path):
    with locked(tmp_path / "coco"):
        with pytest.raises(OutputError, match=f"pid {os.getpid()}"), locked(tmp_path / "coco"):
            pass
        with locked(tmp_path / "librispeech"):  # another dataset's folder is another lock
            pass
    with locked(tmp_path / "coco"):  # released with its holder
        pass


def test_overwrite_keeps_the_old_output_until_the_new_run_succeeds(tmp_path):
    old = finished_run(tmp_path / "coco")
    failed = Replacement(old)
    assert not old.exists() and replaced_dir(old).is_dir()
    (old / "train").mkdir(parents=True)
    (old / "train" / "partial.parquet").write_bytes(b"half a run")
    failed.roll_back()
    assert (old / "train" / "train-00000-of-00001.parquet").read_bytes() == b"old rows" and not replaced_dir(old).exists()

    succeeded = Replacement(old)
    old.mkdir()
    (old / "_manifest.json").write_text('{"new": 1}')
    succeeded.commit()
    assert (old / "_manifest.json").read_text() == '{"new": 1}' and not replaced_dir(old).exists()


def test_a_killed_overwrite_run_is_finished_by_the_next_run(tmp_path):
    old = finished_run(tmp_path / "coco")
    Replacement(old)  # then the process is killed: neither committed nor rolled back
    (old / "train").mkdir(parents=True)
    assert "put back" in recover(old)
    assert (old / "train" / "train-00000-of-00001.parquet").read_bytes() == b"old rows"

    Replacement(old)
    old.mkdir()
    (old / "_manifest.json").write_text('{"new": 1}')  # killed after its manifest, before deleting the old output
    assert recover(old) is None and not replaced_dir(old).exists() and (old / "_manifest.json").read_text() == '{"new": 1}'
