import os

from mmfeat.runners.options import limit_native_threads, local_worker_processes, native_thread_limits, pipeline_options


def test_default_runner_is_direct():
    assert pipeline_options([]).get_all_options()["runner"] == "DirectRunner"
    assert pipeline_options(["--runner=SomethingElse"]).get_all_options()["runner"] == "SomethingElse"


def test_worker_processes():
    assert local_worker_processes(pipeline_options([])) == 1
    assert local_worker_processes(pipeline_options(["--direct_num_workers=4"])) == 1  # in-memory threads, one process
    multi = pipeline_options(["--direct_num_workers=3", "--direct_running_mode=multi_processing"])
    assert local_worker_processes(multi) == 3


def test_thread_limits_split_the_cores_and_respect_the_user(monkeypatch):
    assert native_thread_limits(2, cpus=8)["OPENBLAS_NUM_THREADS"] == "4"
    assert native_thread_limits(16, cpus=2)["OMP_NUM_THREADS"] == "1"
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    for name in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    applied = limit_native_threads(pipeline_options(["--direct_num_workers=2", "--direct_running_mode=multi_processing"]))
    assert "OMP_NUM_THREADS" not in applied and os.environ["OMP_NUM_THREADS"] == "7"
    assert os.environ["OPENBLAS_NUM_THREADS"] == str(max(1, (os.cpu_count() or 1) // 2))
    assert limit_native_threads(pipeline_options([])) == {}
