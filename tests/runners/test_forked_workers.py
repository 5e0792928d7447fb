"""multi_processing workers forked from a warm server (runners.forked_workers)."""

import subprocess
import sys
import textwrap

from mmfeat.runners.forked_workers import BEAM_WORKER_COMMAND, WORKER_PROCESS_NAME

# Deliberately without a __main__ guard: a worker must not run this script again.
SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions
    from multiprocessing import forkserver
    from mmfeat.runners.forked_workers import fork_sdk_workers

    print("script ran", flush=True)

    def where(_):
        from mmfeat.runners.beam_speedups import in_a_worker_process
        from mmfeat.runners.forked_workers import FORKED_WORKER_ENV
        comm = open("/proc/self/comm").read().strip()
        parent = open(f"/proc/{os.getppid()}/cmdline", "rb").read()
        return f"{os.environ.get(FORKED_WORKER_ENV)}:{in_a_worker_process()}:{comm}:{b'multiprocessing.forkserver' in parent}"

    class Stage:
        def warm_up(self):  # in the fork server: its workers find the mark, made by their parent
            import json
            json.mmfeat_warmed_by = os.getpid()

    def warmed(_):
        import json
        return f"warm:{getattr(json, 'mmfeat_warmed_by', None) == os.getppid()}"

    def run(enabled):
        fork_sdk_workers(enabled, warm_up=[Stage()])
        options = PipelineOptions(["--direct_num_workers=2", "--direct_running_mode=multi_processing"])
        with beam.Pipeline(options=options) as p:
            numbers = p | beam.Create(range(4))
            reports = (numbers | beam.Map(where), numbers | "W" >> beam.Map(warmed)) | beam.Flatten() | beam.combiners.ToList()
            _ = reports | beam.Map(lambda found: print("workers", " ".join(sorted(found)), flush=True))  # one line

    run(True)
    server = forkserver._forkserver._forkserver_pid
    os.kill(server, signal.SIGKILL)  # the server gone: the next workers need a new one
    while open(f"/proc/{server}/stat").read().rsplit(")", 1)[1].split()[0] != "Z":  # dead, not yet reaped
        pass
    run(True)
    run(False)
    """
)


def test_workers_fork_from_the_warm_server_and_the_script_runs_once(tmp_path):
    script = tmp_path / "unguarded.py"
    script.write_text(SCRIPT)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert lines.count("script ran") == 1, done.stdout  # not again in a worker: __main__ is not re-imported
    reports = [line.split(" ")[1:] for line in lines if line.startswith("workers ")]
    assert [len(run) for run in reports] == [8, 8, 8], done.stdout
    assert reports[0][4:] == ["warm:True"] * 4  # the stages given were warmed up in the server, before the fork
    assert reports[1][4:] == reports[2][4:] == ["warm:False"] * 4  # a restarted server has no stages; Beam's own workers
    reports = [run[:4] for run in reports]
    forked = f"1:True:{WORKER_PROCESS_NAME}:True"
    assert reports[0] == reports[1] == [forked] * 4, done.stdout  # the second run's after the server was killed and started again
    assert all(report.startswith("None:True:") and not report.endswith(":True") for report in reports[2])  # Beam's own


def test_other_commands_start_as_before():
    from apache_beam.runners.portability import local_job_service

    from mmfeat.runners.forked_workers import _ForkingSubprocess

    forking = _ForkingSubprocess()
    assert forking.PIPE is subprocess.PIPE  # the rest of the module is subprocess's
    process = forking.Popen("echo hi", shell=True, stdout=subprocess.PIPE)
    assert isinstance(process, subprocess.Popen) and process.communicate()[0] == b"hi\n"
    assert BEAM_WORKER_COMMAND.endswith("-m apache_beam.runners.worker.sdk_worker_main")
    assert local_job_service.subprocess in (subprocess, sys.modules["subprocess"]) or local_job_service.subprocess.mmfeat_forking
