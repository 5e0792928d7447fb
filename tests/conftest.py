"""Session fixtures: the sample dataset and a few whole pipeline runs, shared by the end-to-end tests."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from mmfeat.pipelines.datasets.librispeech.sample import write_librispeech_sample


@dataclass(frozen=True)
class CliRun:
    returncode: int
    stdout: str
    stderr: str
    output: Path
    dataset: str = "librispeech"

    @property
    def dataset_dir(self) -> Path:
        return self.output / self.dataset


def run_cli(
    *args: str, output: Path | None = None, env: dict[str, str] | None = None, timeout: int = 600, dataset: str = "librispeech"
) -> CliRun:
    """Run the real command line in a fresh interpreter, as a user would (``env`` is added to the environment)."""
    proc = subprocess.run(
        [sys.executable, "-m", "mmfeat.runners.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
    return CliRun(proc.returncode, proc.stdout, proc.stderr, output or Path(), dataset)


def run_librispeech(input_dir: Path, output: Path, *extra: str, env: dict[str, str] | None = None) -> CliRun:
    run = run_cli(
        "run", "librispeech", "--input", str(input_dir), "--output", str(output), "--no-progress", *extra, output=output, env=env
    )
    assert run.returncode == 0, run.stderr[-4000:]
    return run


def run_dataset(dataset: str, input_dir: Path, output: Path, *extra: str) -> CliRun:
    args = ("run", dataset, "--input", str(input_dir), "--output", str(output), "--no-progress", *extra)
    run = run_cli(*args, output=output, dataset=dataset)
    assert run.returncode == 0, run.stderr[-4000:]
    return run


def run_coco(input_dir: Path, output: Path, *extra: str) -> CliRun:
    return run_dataset("coco", input_dir, output, *extra)


def declared_schema(dataset: str, root: Path, *overrides: str):
    """The table that ``dataset``'s graph declares for these ``--set`` overrides (discovery and the feature graph,
    without the run's preflight checks: ``text.lemmatize`` needs no lookup tables to declare its column)."""
    from mmfeat.pipelines.registry import DATASETS
    from mmfeat.runners.config import load_config

    config = load_config(dataset, overrides=list(overrides))
    spec = DATASETS[dataset]
    return spec.feature_graph(spec.discover(root, config), config).schema


@pytest.fixture(scope="session")
def iemocap_root(tmp_path_factory) -> Path:
    pytest.importorskip("av")
    from mmfeat.pipelines.datasets.iemocap.sample import write_iemocap_sample

    return write_iemocap_sample(tmp_path_factory.mktemp("iemocap_data"))


@pytest.fixture(scope="session")
def iemocap_run(iemocap_root, tmp_path_factory) -> CliRun:
    return run_dataset("iemocap", iemocap_root, tmp_path_factory.mktemp("iemocap_default"))


@pytest.fixture(scope="session")
def iemocap_fusion_run(iemocap_root, tmp_path_factory) -> CliRun:
    fusion = ("--set", "iemocap.fusion=true", "--set", "video.size=224", "--set", "encode.text.name=minilm_l6")
    return run_dataset("iemocap", iemocap_root, tmp_path_factory.mktemp("iemocap_fusion"), *fusion)


# The multi-process runs also turn read-ahead off (``execution.read_ahead=0``): the parity tests
# that compare them with the in-process runs check that neither workers nor read-ahead change a byte.
WORKERS_WITHOUT_READ_AHEAD = (
    "--direct_num_workers=2", "--direct_running_mode=multi_processing", "--set", "execution.read_ahead=0",
)  # fmt: skip


@pytest.fixture(scope="session")
def iemocap_multiprocess_run(iemocap_root, tmp_path_factory) -> CliRun:
    return run_dataset("iemocap", iemocap_root, tmp_path_factory.mktemp("iemocap_mp"), *WORKERS_WITHOUT_READ_AHEAD)


@pytest.fixture(scope="session")
def coco_root(tmp_path_factory) -> Path:
    from mmfeat.pipelines.datasets.coco.sample import write_coco_sample

    return write_coco_sample(tmp_path_factory.mktemp("coco_data"))


@pytest.fixture(scope="session")
def coco_run(coco_root, tmp_path_factory) -> CliRun:
    return run_coco(coco_root, tmp_path_factory.mktemp("coco_default"))


COCO_AUGMENTED = (
    "--set", "augment.views=2", "--set", "image.jpeg_quality=90", "--set", "image.size=96",
    "--set", "encode.image.name=null", "--set", "output.rows_per_shard=4", "--set", "encode.text.name=minilm_l6",
)  # fmt: skip


@pytest.fixture(scope="session")
def coco_augmented_multiprocess_run(coco_root, tmp_path_factory) -> CliRun:
    return run_coco(
        coco_root,
        tmp_path_factory.mktemp("coco_mp"),
        *COCO_AUGMENTED,
        *WORKERS_WITHOUT_READ_AHEAD,
    )


@pytest.fixture(scope="session")
def coco_augmented_inprocess_run(coco_root, tmp_path_factory) -> CliRun:
    return run_coco(coco_root, tmp_path_factory.mktemp("coco_ip"), *COCO_AUGMENTED)


@pytest.fixture(scope="session")
def librispeech_root(tmp_path_factory) -> Path:
    return write_librispeech_sample(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="session")
def default_run(librispeech_root, tmp_path_factory) -> CliRun:
    return run_librispeech(librispeech_root, tmp_path_factory.mktemp("run_a"))


@pytest.fixture(scope="session")
def repeat_run(librispeech_root, tmp_path_factory) -> CliRun:
    """The same run with one-thread BLAS/OpenMP forced from outside: results must not depend on thread counts."""
    single = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return run_librispeech(librispeech_root, tmp_path_factory.mktemp("run_b"), env=single)


@pytest.fixture(scope="session")
def rendered_report():
    """``mmfeat report`` of a finished run, rendered once per store (``OUT/<dataset>/report/index.html``)."""
    pages: dict[Path, Path] = {}

    def render(run: CliRun) -> Path:
        from mmfeat.runners.cli import main  # in-process: the command itself, without a fresh interpreter's start-up

        if run.dataset_dir not in pages:
            assert main(["report", str(run.dataset_dir)]) == 0
            pages[run.dataset_dir] = run.dataset_dir / "report" / "index.html"
        return pages[run.dataset_dir]

    return render


AUGMENTED = ("--set", "augment.views=2", "--set", "output.rows_per_shard=4", "--set", "mfcc.deltas=1")


@pytest.fixture(scope="session")
def augmented_multiprocess_run(librispeech_root, tmp_path_factory) -> CliRun:
    return run_librispeech(
        librispeech_root,
        tmp_path_factory.mktemp("run_mp"),
        *AUGMENTED,
        *WORKERS_WITHOUT_READ_AHEAD,
    )


@pytest.fixture(scope="session")
def augmented_inprocess_run(librispeech_root, tmp_path_factory) -> CliRun:
    return run_librispeech(librispeech_root, tmp_path_factory.mktemp("run_ip"), *AUGMENTED)


@pytest.fixture(scope="session")
def s3():
    """moto's S3 server on loopback, and Beam's S3 filesystem in this process pointed at it."""
    pytest.importorskip("moto.server")
    pytest.importorskip("boto3")
    from mmfeat.pipelines.storage import use_object_stores
    from tests.object_store import s3_server

    with s3_server() as server:
        use_object_stores(server.beam_flags)
        yield server


@pytest.fixture(scope="session")
def s3_corpus(s3, librispeech_root, coco_root, iemocap_root, tmp_path_factory) -> str:
    """The four samples in a bucket (``s3://corpus/…``), as a user keeps a dataset."""
    from mmfeat.pipelines.datasets.folder.sample import write_folder_sample

    url = s3.create_bucket("corpus")
    s3.upload_tree(librispeech_root, f"{url}/speech/LibriSpeech")
    s3.upload_tree(coco_root, f"{url}/images/coco [2017]")  # a prefix with a space and glob characters
    s3.upload_tree(iemocap_root, f"{url}/dialogs")
    s3.upload_tree(write_folder_sample(tmp_path_factory.mktemp("folder")), f"{url}/folder")
    return url
