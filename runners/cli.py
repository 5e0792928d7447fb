"""``mmfeat``: write sample data, run a dataset pipeline, print the default configuration."""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from mmfeat.pipelines.storage import forget_listings, is_url, location
from mmfeat.runners.beam_notices import quiet_benign_beam_notices

EPILOG_RUN = """\
Any other flag is passed to Apache Beam. Runners (short names; README "Scaling out"):
  direct (default)   --direct_num_workers 2 --direct_running_mode multi_processing
  dask               [--dask_client_address HOST:PORT | --dask_workers N (local cluster)]
  flink              --flink_master HOST:PORT [--sdk_container_image IMAGE]
  dataflow           --project P --region R --temp_location gs://B/tmp [--sdk_container_image IMAGE]
                     [--worker_gpu nvidia-l4[:COUNT] --machine_type g2-standard-8]
Without --sdk_container_image, flink/dataflow workers install mmfeat's wheel (built from this checkout).
Config precedence: built-in defaults < --config FILE < --set key=value (see `mmfeat config`).
Output: OUT/<dataset>/data/<split>/*.parquet, OUT/<dataset>/rejects/*.jsonl, vocab.json, README.md (the dataset
card) and _manifest.json (last).
"""


EXIT_TOO_MANY_ERRORS = 3  # the run finished, its output is written, but execution.max_error_fraction was passed
EXIT_VERIFY_FAILED = 1  # mmfeat verify found a problem (each one printed)
_RUN_FLAGS = ("--input", "--output", "--config", "--set", "--overwrite", "--resume", "--no-progress")


def _parser() -> argparse.ArgumentParser:
    from mmfeat import __version__

    parser = argparse.ArgumentParser(prog="mmfeat", description="Multimodal feature extraction pipelines on Apache Beam.")
    parser.add_argument("--version", action="version", version=f"mmfeat {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sample = commands.add_parser("sample-data", help="write tiny sample datasets in their real layouts (with broken files)")
    sample.add_argument("out", type=Path, metavar="OUT", help="folder to write the datasets into")
    sample.add_argument("--datasets", help="comma-separated datasets to write (default: every dataset)")

    demo = commands.add_parser("demo", help="write the sample datasets, run every dataset on them and write the reports")
    demo.add_argument("folder", type=Path, metavar="DIR", help="an empty or new folder: DIR/data and DIR/out are written")
    demo.add_argument("--datasets", help="comma-separated datasets (default: every dataset)")

    run = commands.add_parser(
        "run", help="run a dataset pipeline", epilog=EPILOG_RUN, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    run.add_argument("dataset", metavar="DATASET", help="dataset to process, e.g. librispeech")
    run.add_argument("--input", required=True, type=Path, metavar="IN", help="the dataset's root folder in its real layout")
    run.add_argument("--output", required=True, type=Path, metavar="OUT", help="output folder (OUT/<dataset>/ is written)")
    run.add_argument("--config", type=Path, metavar="FILE", help="YAML config file (sections as in `mmfeat config`)")
    run.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one setting, e.g. --set mfcc.n_mfcc=13 (repeatable)",
    )
    run.add_argument("--overwrite", action="store_true", help="replace an existing OUT/<dataset>/ instead of refusing")
    run.add_argument(
        "--resume", action="store_true", help="finish an interrupted run in OUT/<dataset>/: completed shards are kept, not redone"
    )
    run.add_argument("--no-progress", action="store_true", help="no progress bar (the summary is still printed)")

    inspect = commands.add_parser("inspect", help="print a run's counts, its schema and a few decoded rows")
    inspect.add_argument("path", type=Path, metavar="OUT/DATASET", help="a dataset output folder (the one with _manifest.json)")
    inspect.add_argument("--rows", type=int, default=3, help="rows to show (default: %(default)s)")
    inspect.add_argument("--split", help="only this split (with --rejects: its rejects)")
    inspect.add_argument("--rejects", action="store_true", help="show reject rows (source_path, stage, reason, detail)")
    inspect.add_argument("--reason", help="with --rejects: only rejects of this reason")

    verify = commands.add_parser("verify", help="check that a finished run's files are complete and consistent")
    verify.add_argument("path", type=Path, metavar="OUT/DATASET", help="a dataset output folder (the one with _manifest.json)")

    report = commands.add_parser("report", help="write an HTML report with plots of a finished run")
    report.add_argument("path", type=Path, metavar="OUT/DATASET", help="a dataset output folder (the one with _manifest.json)")
    report.add_argument("--output", type=Path, help="folder for index.html, a self-contained page (default: OUT/DATASET/report)")

    show = commands.add_parser("config", help="print the default configuration with every setting documented")
    show.add_argument("dataset", nargs="?", help="(ignored; one file covers every dataset)")
    return parser


def _fail(message: str) -> int:
    print(f"mmfeat: error: {message}", file=sys.stderr)
    return 2


def _sample_data(args: argparse.Namespace) -> int:
    from mmfeat.runners.samples import SampleError, chosen_samples, write_sample

    try:
        for name in chosen_samples(args.datasets):
            print(f"{name}: {', '.join(map(str, write_sample(name, args.out)))}")
    except SampleError as err:
        return _fail(str(err))
    return 0


def _stray_argument(beam_args: Sequence[str]) -> str | None:
    """The first argument that is neither a ``--flag`` nor the value of the flag just before it."""
    previous = None
    for arg in beam_args:
        if not arg.startswith("-") and not (previous and previous.startswith("--") and "=" not in previous):
            return arg
        previous = None if not arg.startswith("-") else arg
    return None


def _run(args: argparse.Namespace, beam_args: Sequence[str]) -> int:
    from mmfeat.pipelines.plan import PlanError, plan_run
    from mmfeat.pipelines.sources.base import LayoutError
    from mmfeat.runners.config import ConfigError, load_config

    stray = _stray_argument(beam_args)
    if stray is not None:
        return _fail(f"unexpected argument {stray!r} (Beam flags look like --name=value or --name value)")
    buckets = [location(path) for path in (args.input, args.output) if is_url(path)]
    if buckets:
        from mmfeat.pipelines.storage import StorageError, check_reachable, check_scheme, use_object_stores

        try:
            use_object_stores(beam_args)
            for bucket in buckets:
                check_scheme(bucket)
                check_reachable(bucket)
        except StorageError as err:
            return _fail(str(err))

    from mmfeat.runners.output_folder import output_problem
    from mmfeat.runners.presets import PresetError, check_flags

    if args.resume and args.overwrite:
        return _fail("--resume and --overwrite exclude each other")
    try:
        check_flags(beam_args, mmfeat_flags=_RUN_FLAGS)
    except PresetError as err:
        return _fail(str(err))
    problem = output_problem(location(args.output) / args.dataset)
    if problem:
        return _fail(f"--output: {problem}")
    listing = not args.no_progress and sys.stderr.isatty()  # a large listing takes seconds: say what is going on
    try:
        config = load_config(args.dataset, path=args.config, overrides=args.overrides)
        started = time.perf_counter()
        if listing:
            print(f"mmfeat: listing {location(args.input)} …", file=sys.stderr, flush=True)
        plan = plan_run(args.dataset, args.input, config)
        if listing:
            units = len(plan.listing.units)
            print(f"mmfeat: listed {units} units ({plan.expected_examples()} examples) in {time.perf_counter() - started:.1f} s",
                  file=sys.stderr)  # fmt: skip
    except (ConfigError, PlanError, LayoutError) as err:
        return _fail(str(err))
    except OSError as err:  # the input cannot be listed at all (a permission, a broken mount)
        return _fail(f"--input {location(args.input)}: {err.strerror or err} ({type(err).__name__})")

    from mmfeat.runners.packaging import PackagingError
    from mmfeat.runners.presets import runner_options
    from mmfeat.runners.worker_console import filtered_worker_console

    try:  # the processes the run starts (SDK workers, a local Dask cluster) print through the notice filter
        with filtered_worker_console(), runner_options(beam_args) as options:
            return _run_pipeline(args, options, plan)
    except (PresetError, PackagingError) as err:
        return _fail(str(err))


def _run_pipeline(args: argparse.Namespace, options, plan) -> int:
    """Take the output folder (locked; the old one moved aside with ``--overwrite``), then run the graph."""
    from mmfeat.pipelines.resume import is_complete
    from mmfeat.runners.interrupts import on_interrupt
    from mmfeat.runners.options import runner_name
    from mmfeat.runners.output_folder import OutputError, Replacement, locked, recover
    from mmfeat.runners.presets import REMOTE_RUNNERS
    from mmfeat.runners.summary import format_counts
    from mmfeat.schemas.manifest import read_manifest

    runner = runner_name(options)
    shared = [str(path) for path in (args.input, args.output) if not is_url(path)]  # a bucket every worker reaches
    if runner in REMOTE_RUNNERS and shared:
        print(f"mmfeat: {runner} workers must see {' and '.join(shared)} at these same paths", file=sys.stderr)
    dataset_dir = location(args.output) / args.dataset
    try:
        with locked(dataset_dir):
            note = recover(dataset_dir)
            if note:
                print(f"mmfeat: {note}", file=sys.stderr)
            if dataset_dir.exists() and any(dataset_dir.iterdir()):
                if args.resume and is_complete(dataset_dir):
                    print(format_counts(read_manifest(dataset_dir), dataset_dir))
                    print("  (already complete: nothing to resume)")
                    return 0
                if not (args.overwrite or args.resume):
                    return _fail(f"{dataset_dir} already holds output; pass --resume to finish it or --overwrite to replace it")
            replacement = Replacement(dataset_dir) if args.overwrite else None  # the old output goes only if this run succeeds
            replaced = replacement is not None and replacement.moved
            code = 1

            def interrupted() -> None:  # Ctrl-C, SIGTERM: runs in the signal handler, then the process exits
                _run_failed(dataset_dir, "interrupted", replaced=replaced, runner=runner)
                if replacement is not None:
                    replacement.roll_back()

            try:
                with on_interrupt(interrupted):
                    code = _write_output(args, options, plan, dataset_dir, runner, replaced=replaced)
            finally:
                if replacement is not None and code in (0, EXIT_TOO_MANY_ERRORS):  # finished: its output stands
                    replacement.commit()
                elif replacement is not None:
                    replacement.roll_back()
            return code
    except OutputError as err:
        return _fail(str(err))


def _write_output(args, options, plan, dataset_dir: Path, runner: str, *, replaced: bool) -> int:
    """Run the plan into ``dataset_dir`` (locked by the caller) and print the summary."""
    from mmfeat.pipelines.plan import TooManyErrors, check_error_ceiling
    from mmfeat.pipelines.resume import ResumeError, input_signature, start_run
    from mmfeat.runners.dask.warm_up import warm_up_cluster
    from mmfeat.runners.progress import ShardProgress
    from mmfeat.runners.summary import format_summary
    from mmfeat.schemas.manifest import read_manifest

    try:
        completed = start_run(
            dataset_dir,
            dataset=args.dataset,
            config_sha256=plan.config.digest(),
            resume=args.resume,
            inputs_sha256=input_signature(plan.listing.units),
        )
    except ResumeError as err:
        return _fail(str(err))
    except OSError as err:  # the output cannot be written at all: a bucket that does not exist, no permission
        return _fail(f"--output {dataset_dir}: {err.strerror or err}")

    started = time.perf_counter()
    warm_up_cluster(options, plan.graph.heavy_stages())  # Dask: the workers import while the job is built
    try:
        shown = not args.no_progress and sys.stderr.isatty()
        kept = sum(result.examples for result in completed)
        progress = ShardProgress(dataset_dir, total=plan.expected_examples(), enabled=shown, kept=kept)
        with progress:
            try:
                state = plan.run(options, dataset_dir, runner=runner, completed=completed, progress=shown)
            finally:
                forget_listings()  # a bucket's listings, kept from before the run, miss what its workers wrote
    except Exception as err:  # a worker killed, a runner failure: what is finished stays, the manifest is not written
        logging.getLogger("mmfeat").debug("pipeline failed", exc_info=True)
        return _run_failed(dataset_dir, f"{type(err).__name__}: {err}", replaced=replaced, runner=runner)
    if state != "DONE":
        return _run_failed(dataset_dir, f"the runner finished in state {state}", replaced=replaced, runner=runner)
    wall = time.perf_counter() - started
    manifest = read_manifest(dataset_dir)
    print(format_summary(manifest, dataset_dir, wall))
    try:
        check_error_ceiling(manifest, plan.config.execution.max_error_fraction)
    except TooManyErrors as err:
        print(f"mmfeat: error: {err}", file=sys.stderr)
        return EXIT_TOO_MANY_ERRORS
    return 0


STARTUP_FIXES = {  # runner -> what most often stops a job before its first shard
    "FlinkRunner": "is Flink reachable at --flink_master, and does --flink_version match it (docs/scaling-out.md)?",
    "PortableRunner": "is the job service reachable at --job_endpoint, and the worker pool at --environment_config?",
    "DaskRunner": "is the Dask scheduler reachable at --dask_client_address, and do its workers have mmfeat installed?",
    "DataflowRunner": "check --project, --region, --temp_location, the credentials (gcloud auth application-default "
    "login) and that the Dataflow API is enabled",
}


def _run_failed(dataset_dir: Path, reason: str, *, replaced: bool = False, runner: str = "") -> int:
    """A run that did not finish: no manifest (a manifest says a run finished); say so, and how to finish it
    without redoing the completed shards. A run that failed before its first shard is a start-up failure: it
    leaves nothing behind (no ``_run.json``, no ``_units/``), and the message names the likely fix."""
    from mmfeat.pipelines.resume import RUN_FILE
    from mmfeat.pipelines.units import remove_spilled_units
    from mmfeat.schemas.layout import SHARD_MARKERS_DIR
    from mmfeat.schemas.manifest import MANIFEST_FILE

    forget_listings()  # in a bucket: list what the run's workers wrote
    (dataset_dir / MANIFEST_FILE).unlink(missing_ok=True)  # written by this run before it was stopped
    first_line = reason.strip().splitlines()[0] if reason.strip() else "unknown error"
    if not any((dataset_dir / SHARD_MARKERS_DIR).glob("*.json")):
        (dataset_dir / RUN_FILE).unlink(missing_ok=True)
        remove_spilled_units(dataset_dir)
        for folder in (dataset_dir / SHARD_MARKERS_DIR, dataset_dir):  # if empty: _shards/, then the dataset's own
            with contextlib.suppress(OSError):
                folder.rmdir()
        kept = f"the output that --overwrite was replacing is back in {dataset_dir}" if replaced else "nothing was written"
        fix = STARTUP_FIXES.get(runner, "fix what the error names and run the same command again (no --resume needed)")
        print(f"mmfeat: error: start-up failed ({first_line[:300]}): {kept}.\n  Likely fix: {fix}", file=sys.stderr)
        return 1
    if replaced:
        after = f"  The output that --overwrite was replacing is back in {dataset_dir}, as it was."
    else:
        after = (
            f"  Shards completed so far are kept in {dataset_dir}; no manifest was written.\n"
            "  Run the same command again with --resume to finish it."
        )
    print(f"mmfeat: error: the pipeline failed ({first_line[:300]}).\n{after}", file=sys.stderr)
    return 1


def _inspect(args: argparse.Namespace) -> int:
    from mmfeat.pipelines.run_stats import read_run_stats
    from mmfeat.runners.summary import format_counts, format_run_stats
    from mmfeat.schemas.manifest import read_manifest
    from mmfeat.schemas.reader import FeatureDataset, describe_row

    path = args.path.expanduser()
    if not (path / "_manifest.json").is_file():
        candidates = sorted(p.parent.name for p in path.glob("*/_manifest.json"))
        hint = f" (datasets here: {', '.join(candidates)})" if candidates else ""
        return _fail(f"{path} has no _manifest.json{hint}")
    manifest = read_manifest(path)
    print(format_counts(manifest, path))
    stats = read_run_stats(path)
    if stats is not None:
        print(format_run_stats(stats))
    if args.rejects or args.split == "rejects":  # `--split rejects`: the spelling before --rejects
        split = None if args.split == "rejects" else args.split
        return _inspect_rejects(path, manifest, args.rows, split=split, reason=args.reason)
    if args.reason:
        return _fail("--reason selects rejects: add --rejects")
    try:
        data = FeatureDataset(path, split=args.split)
    except ValueError as err:
        return _fail(str(err))
    print("\nschema:")
    for field, stored in zip(data.schema, data.stored_schema):
        layout = f"  (stored as {stored.type}: output.byte_tensors=bytes)" if stored.type != field.type else ""
        print(f"  {field.name:<24} {field.type}{layout}{_encoder_note(stored)}")
    for i, row in enumerate(data.partition(0, 1)):
        if i >= args.rows:
            break
        print(f"\nrow {i}:")
        for name, value in describe_row(row).items():
            print(f"  {name:<24} {value}")
    return 0


def _encoder_note(field) -> str:
    """An embedding column's provenance from its field metadata (``transforms.encode.encoder_metadata``)."""
    meta = {k.decode(): v.decode() for k, v in (field.metadata or {}).items() if k.startswith(b"mmfeat.encoder")}
    if not meta:
        return ""
    weights = meta.get("mmfeat.encoder_weights_sha256") or "not hashed"
    return (
        f"  (encoder {meta['mmfeat.encoder']}, weights sha256 {weights[:16]}, "
        f"device {meta.get('mmfeat.encoder_device')}, dtype {meta.get('mmfeat.encoder_dtype')})"
    )


def _inspect_rejects(path: Path, manifest: dict, rows: int, *, split: str | None, reason: str | None) -> int:
    """``inspect --rejects``: the first ``rows`` reject rows (of ``split``, of ``reason``), one line per field."""
    import pyarrow.compute as pc

    from mmfeat.schemas.rejects import read_rejects

    shown = 0
    for relative in manifest["rejects"]:
        table = read_rejects(path / relative)
        for column, wanted in (("split", split), ("reason", reason)):
            if wanted is not None:
                table = table.filter(pc.equal(table[column], wanted))
        for row in table.slice(0, rows - shown).to_pylist():  # only the rows shown
            print(f"\nreject {shown} ({relative}):")
            for name, value in row.items():
                print(f"  {name:<24} {value}")
            shown += 1
        if shown >= rows:
            break
    if not shown:
        reasons = manifest["counts"]["rejected_by_reason"]
        if reason is not None and reason not in reasons:
            return _fail(f"no rejects with reason {reason!r} in {path} (reasons: {', '.join(reasons) or 'none'})")
        splits = sorted({s["split"] for s in manifest["shards"]})
        where = " ".join(f"{k} {v!r}" for k, v in (("of split", split), ("with reason", reason)) if v is not None)
        print(f"\nno rejects {where}".rstrip() + (f" (splits with rows: {', '.join(splits)})" if split else ""))
    return 0


def _verify(args: argparse.Namespace, store_flags: Sequence[str]) -> int:
    """``store_flags``: Beam's filesystem flags for a store in a bucket (``--s3_endpoint_url``…), as for ``run``."""
    from mmfeat.schemas.verify import verify_store

    path = location(args.path)
    if is_url(path):
        from mmfeat.pipelines.storage import StorageError, check_reachable, check_scheme, use_object_stores

        bad = [flag for flag in store_flags if not flag.startswith(("--s3_", "--aws_", "--gcs_", "--project"))]
        if bad:
            return _fail(f"unexpected arguments: {' '.join(bad)} (a store in a bucket takes Beam's filesystem flags)")
        try:
            use_object_stores(store_flags)
            check_scheme(path)
            check_reachable(path)
        except StorageError as err:
            return _fail(str(err))
    elif store_flags:
        return _fail(f"unexpected arguments: {' '.join(store_flags)}")
    if not path.is_dir():
        return _fail(f"{path} is not a folder (pass OUT/<dataset>)")
    problems = verify_store(path)
    for problem in problems:
        print(problem)
    if problems:
        print(f"mmfeat verify: {path}: {len(problems)} problem(s)", file=sys.stderr)
        return EXIT_VERIFY_FAILED
    print(f"mmfeat verify: {path}: every check passed (files, schema, rows, counts, alignment)")
    return 0


def _report(args: argparse.Namespace) -> int:
    path = args.path.expanduser()
    if not (path / "_manifest.json").is_file():
        return _fail(f"{path} has no _manifest.json (pass OUT/<dataset>)")
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:  # imported only once the plots are drawn
        return _fail("the report needs matplotlib: pip install 'mmfeat[report]'")
    from mmfeat.runners.report import write_report

    print(f"report: {write_report(path, args.output)}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from mmfeat.runners.interrupts import stop_on_signals, stop_run
    from mmfeat.runners.process_setup import set_up_command_process

    set_up_command_process()  # this command's process only (never a graph builder's)
    stopped = "mmfeat: stopped (interrupted); no process of the run is left"
    stop_on_signals(stopped)
    try:
        return _main(argv)
    except KeyboardInterrupt:  # raised by hand somewhere (the handlers stop the run without raising)
        stop_run(stopped)
        raise  # not reached: stop_run exits


def _main(argv: Sequence[str] | None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    quiet_benign_beam_notices()
    args, rest = _parser().parse_known_args(argv)
    forget_listings()  # a command sees the stores as they are now (mmfeat's main, called again in one process)
    if args.command == "sample-data":
        if rest:
            return _fail(f"unexpected arguments: {' '.join(rest)}")
        return _sample_data(args)
    if args.command == "demo":
        from mmfeat.runners.demo import run_demo
        from mmfeat.runners.samples import SampleError

        try:
            return run_demo(args.folder, args.datasets, rest)
        except SampleError as err:
            return _fail(str(err))
    if args.command == "inspect":
        if rest:
            return _fail(f"unexpected arguments: {' '.join(rest)}")
        return _inspect(args)
    if args.command == "verify":
        return _verify(args, rest)
    if args.command == "report":
        if rest:
            return _fail(f"unexpected arguments: {' '.join(rest)}")
        return _report(args)
    if args.command == "config":
        from mmfeat.runners.config import default_config_text

        print(default_config_text(), end="")
        return 0
    return _run(args, rest)


if __name__ == "__main__":
    sys.exit(main())
