"""Worker packaging: the wheel a remote worker installs runs the pipeline on its own."""

import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import apache_beam
import pytest

from mmfeat.runners.packaging import build_wheel, default_image, project_root

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_wheel_runs_the_pipeline_from_a_clean_venv_on_the_portable_harness(tmp_path, librispeech_root, default_run):
    """Installed with no source tree in sight, run with multi_processing (the SDK harness Flink/Dataflow workers run)."""
    from tests.test_end_to_end import tree_bytes

    wheel = build_wheel(tmp_path / "dist")
    env_dir = tmp_path / "clean"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    purelib = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = Path(subprocess.check_output([python, "-c", purelib], text=True).strip())
    # the dependencies come from the project's environment (appended, so the wheel's mmfeat comes first);
    # lines of a .pth file add folders without running their own .pth files (the editable install's hook)
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], check=True)

    where = subprocess.check_output([python, "-c", "import mmfeat; print(mmfeat.__file__)"], cwd=tmp_path, text=True)
    assert Path(where.strip()).is_relative_to(site)
    run = subprocess.run(
        [env_dir / "bin" / "mmfeat", "run", "librispeech", "--input", librispeech_root, "--output", tmp_path / "out",
         "--no-progress", "--direct_num_workers=2", "--direct_running_mode=multi_processing"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    out = tmp_path / "out" / "librispeech"
    assert tree_bytes(out) == tree_bytes(default_run.dataset_dir)


def test_the_wheel_is_built_from_this_checkout():
    assert project_root() == REPO


def test_container_recipe_matches_the_launcher():
    """Beam needs the worker image's SDK and Python to be the launcher's: the recipe's defaults must follow."""
    dockerfile = (REPO / "container" / "Dockerfile").read_text()
    assert "FROM apache/beam_python${PYTHON_VERSION}_sdk:${BEAM_VERSION}" in dockerfile
    assert 'pip install --no-cache-dir "apache-beam==${BEAM_VERSION}"' in dockerfile  # mmfeat's install keeps the image's SDK
    makefile = (REPO / "Makefile").read_text()
    recipe = makefile[makefile.index("\ncontainer:") :]
    assert "--build-arg PYTHON_VERSION=" in recipe and "--build-arg BEAM_VERSION=" in recipe and "-t $(IMAGE)" in recipe
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert default_image().endswith(f"-py{python}-beam{apache_beam.__version__}")
