"""The options each runner preset builds, and what it refuses before anything starts."""

from pathlib import Path

import pytest

from mmfeat.runners.presets import PresetError, runner_options, worker_accelerator
from tests.conftest import run_cli
from tests.object_store import gcs_client_installed


def fake_wheel(folder: Path) -> Path:
    wheel = folder / "mmfeat-0-py3-none-any.whl"
    wheel.write_bytes(b"")
    return wheel


def built(*flags: str) -> dict:
    with runner_options(list(flags), wheel=fake_wheel) as options:
        return options.get_all_options()


def test_flink_preset_runs_workers_in_docker_with_the_staged_wheel():
    options = built("--runner", "flink", "--flink_master", "jobmanager:8081")
    assert options["runner"] == "FlinkRunner" and options["flink_master"] == "jobmanager:8081"
    assert options["environment_type"] == "DOCKER"
    assert [Path(p).name for p in options["extra_packages"]] == ["mmfeat-0-py3-none-any.whl"]


def test_flink_preset_with_an_image_loopback_or_an_external_pool_stages_nothing():
    image = built("--runner=flink", "--flink_master=jm:8081", "--sdk_container_image=registry/mmfeat-worker:1")
    assert image["sdk_container_image"] == "registry/mmfeat-worker:1" and not image["extra_packages"]
    loopback = built("--runner=flink", "--flink_master=[local]", "--environment_type=LOOPBACK")
    assert loopback["environment_type"] == "LOOPBACK" and not loopback["extra_packages"]
    pool = built("--runner=flink", "--flink_master=jm:8081", "--environment_type=EXTERNAL", "--environment_config=127.0.0.1:5")
    assert pool["environment_type"] == "EXTERNAL" and not pool["extra_packages"]  # the pool's own mmfeat runs


def test_dataflow_preset_with_a_gpu_worker_image():
    options = built(
        "--runner=dataflow",
        "--project=p",
        "--region=europe-west4",
        "--temp_location=gs://bucket/tmp",
        "--sdk_container_image=europe-docker.pkg.dev/p/r/mmfeat-worker:1",
        "--worker_gpu=nvidia-l4",
        "--machine_type=g2-standard-8",
    )
    assert options["runner"] == "DataflowRunner"
    assert options["sdk_location"] == "container" and not options["extra_packages"]
    accelerator = "worker_accelerator=type:nvidia-l4;count:1;install-nvidia-driver;use_nvidia_mps"
    assert options["dataflow_service_options"] == [accelerator]
    assert "use_runner_v2" in options["experiments"]


def test_dataflow_preset_keeps_what_the_user_set():
    options = built(
        "--runner=dataflow",
        "--project=p",
        "--region=r",
        "--temp_location=gs://b/t",
        "--extra_package=/wheels/mmfeat-1.whl",
        "--dataflow_service_options=worker_accelerator=type:nvidia-tesla-t4;count:2",
        "--worker_gpu=nvidia-l4",
        "--machine_type=n1-standard-8",
    )
    assert options["extra_packages"] == ["/wheels/mmfeat-1.whl"]
    assert options["dataflow_service_options"] == ["worker_accelerator=type:nvidia-tesla-t4;count:2"]


DATAFLOW = ("--runner=dataflow", "--project=p", "--region=r")


@pytest.mark.parametrize(
    "flags, message",
    [
        (("--runner=flink",), "--flink_master"),
        (("--runner=dataflow", "--region=r", "--temp_location=gs://b/t"), "--project"),
        ((*DATAFLOW, "--temp_location=/tmp/x"), "gs://"),
        ((*DATAFLOW, "--temp_location=gs://b/t", "--worker_gpu=nvidia-l4"), "--machine_type"),
    ],
)
def test_presets_refuse_what_the_runner_cannot_work_without(flags, message):
    with pytest.raises(PresetError, match=message):
        built(*flags)


def test_worker_accelerator_syntax():
    assert worker_accelerator("nvidia-tesla-t4:2") == "worker_accelerator=type:nvidia-tesla-t4;count:2;install-nvidia-driver"
    with pytest.raises(PresetError):
        worker_accelerator("nvidia-l4:zero")


def test_short_runner_names_and_direct_default():
    assert built()["runner"] == "DirectRunner"
    assert built("--runner", "direct")["runner"] == "DirectRunner"


def test_multi_process_direct_workers_log_warnings_unless_told_otherwise():
    multi = ("--direct_running_mode", "multi_processing", "--direct_num_workers", "2")
    assert built(*multi)["default_sdk_harness_log_level"] == "WARNING"
    assert built(*multi, "--default_sdk_harness_log_level", "DEBUG")["default_sdk_harness_log_level"] == "DEBUG"
    assert built()["default_sdk_harness_log_level"] is None  # in process: the user's own logging settings


def test_cli_refuses_a_preset_before_writing_anything(tmp_path, librispeech_root):
    run = run_cli("run", "librispeech", "--input", str(librispeech_root), "--output", str(tmp_path / "o"), "--runner", "flink")
    assert run.returncode == 2 and "--flink_master" in run.stderr
    assert not (tmp_path / "o").exists()


@pytest.mark.skipif(gcs_client_installed(), reason="the GCS client is installed")
def test_a_bucket_whose_filesystem_is_not_installed_names_the_extra_before_anything_is_written(
    tmp_path, librispeech_root, capsys
):
    from mmfeat.runners.cli import main

    assert main(["run", "librispeech", "--input", str(librispeech_root), "--output", "gs://bucket/out"]) == 2
    assert "gs://bucket/out: Beam has no filesystem for gs:// in this environment; pip install 'mmfeat[gcp]'" in (
        capsys.readouterr().err
    )
    assert not Path("gs:").exists()
    assert main(["run", "librispeech", "--input", "gs://bucket/LibriSpeech", "--output", str(tmp_path)]) == 2
    assert "gs://bucket/LibriSpeech: Beam has no filesystem for gs://" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())

