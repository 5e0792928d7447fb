"""The CLI as a user runs it, with the Parquet read back."""

import hashlib
import json
from collections import Counter

import numpy as np
import pyarrow.dataset as ds
import pytest
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline

from mmfeat.extractors.text import Vocabulary
from mmfeat.pipelines.graph import build_feature_pipeline
from mmfeat.pipelines.registry import DATASETS
from mmfeat.runners.config import load_config
from mmfeat.schemas.fields import REJECTS_SCHEMA
from mmfeat.schemas.manifest import read_manifest
from mmfeat.schemas.rejects import store_rejects
from mmfeat.schemas.tensors import arrow_to_matrices
from tests.conftest import declared_schema, run_cli

pytestmark = pytest.mark.slow

EXPECTED_REJECTS = {
    "audio_clipped": 1,
    "audio_empty": 1,
    "audio_missing": 1,
    "audio_silent": 1,
    "audio_too_short": 1,
    "audio_undecodable": 2,
    "text_empty": 1,
    "transcript_malformed_line": 1,
    "transcript_missing": 1,
    "transcript_not_utf8": 1,
    "unexpected_file": 1,
}


def read_rows(dataset_dir, split=None):
    paths = [dataset_dir / s["path"] for s in read_manifest(dataset_dir)["shards"] if split in (None, s["split"])]
    return ds.dataset(paths, format="parquet").to_table().sort_by([("sample_id", "ascending"), ("view", "ascending")])


def tree_bytes(dataset_dir, pattern="data/*/*.parquet"):
    """Each matching file's bytes by its path in the store; matching nothing fails (a comparison of two empty trees
    would pass whatever the runs wrote)."""
    files = {p.relative_to(dataset_dir).as_posix(): p.read_bytes() for p in sorted(dataset_dir.glob(pattern))}
    assert files, f"no {pattern} in {dataset_dir}"
    return files


def test_counts_balance_and_every_bad_file_has_its_reason(default_run):
    counts = read_manifest(default_run.dataset_dir)["counts"]
    assert counts["input"] == counts["written"] + counts["rejected"] == 30
    assert counts["rejected_by_reason"] == EXPECTED_REJECTS
    assert counts["rows"] == counts["written"] == 18
    rejects = store_rejects(default_run.dataset_dir, read_manifest(default_run.dataset_dir)["rejects"])
    assert rejects.schema.equals(REJECTS_SCHEMA, check_metadata=False)
    assert rejects.num_rows == counts["rejected"]
    assert all(rejects["detail"].to_pylist()) and set(rejects["stage"].to_pylist()) == {"read", "text", "clean_audio"}


def test_schema_rows_and_features(default_run, librispeech_root):
    table = read_rows(default_run.dataset_dir)
    assert table.schema.equals(declared_schema("librispeech", librispeech_root), check_metadata=False)
    assert table.num_rows == 18 and set(table["split"].to_pylist()) == {"train-clean-100", "dev-clean"}
    assert "19-198-0009" in table["sample_id"].to_pylist()  # the 8 kHz stereo 24-bit file was cleaned, not rejected
    stereo = table.filter(ds.field("sample_id") == "19-198-0009").to_pylist()[0]
    assert (stereo["source_sample_rate"], stereo["source_channels"], stereo["sample_rate"]) == (8000, 2, 16000)
    for row, mfcc in zip(table.to_pylist(), arrow_to_matrices(table["mfcc"])):
        assert mfcc.shape == (row["mfcc_frames"], 40) and np.isfinite(mfcc).all()
        assert abs(row["mfcc_frames"] - (1 + row["num_samples"] // 160)) == 0
        assert (
            row["content_sha256"]
            == __import__("hashlib").sha256((librispeech_root / row["source_path"]).read_bytes()).hexdigest()
        )
        assert row["augment"] is None and row["view"] == 0


def test_vocabulary_is_built_on_train_and_ids_decode(default_run):
    manifest = read_manifest(default_run.dataset_dir)
    vocab = Vocabulary.from_json((default_run.dataset_dir / manifest["vocabulary"]["path"]).read_text())
    assert vocab.source_splits == ("train-clean-100",) and manifest["vocabulary"]["size"] == len(vocab)
    table = read_rows(default_run.dataset_dir)
    for tokens, ids in zip(table["tokens"].to_pylist(), table["token_ids"].to_pylist()):
        assert [vocab.tokens[i] if i != vocab.OOV_ID else None for i in ids] == [t if t in vocab.tokens else None for t in tokens]
    train = read_rows(default_run.dataset_dir, "train-clean-100")
    assert vocab.OOV_ID not in {i for ids in train["token_ids"].to_pylist() for i in ids}


def test_every_row_names_the_version_and_configuration_that_wrote_it(default_run):
    from mmfeat import __version__

    table = read_rows(default_run.dataset_dir)
    manifest = read_manifest(default_run.dataset_dir)
    assert set(table["mmfeat_version"].to_pylist()) == {__version__}
    assert set(table["config_sha256"].to_pylist()) == {manifest["config_sha256"]}


def test_manifest_lists_everything_written(default_run):
    dataset_dir = default_run.dataset_dir
    manifest = read_manifest(dataset_dir)
    assert manifest["runner"] == "DirectRunner" and len(manifest["config_sha256"]) == 64
    assert manifest["config"]["mfcc"]["n_mfcc"] == 40
    listed = {s["path"] for s in manifest["shards"]} | set(manifest["rejects"])
    on_disk = {p.relative_to(dataset_dir).as_posix() for p in [*dataset_dir.rglob("*.parquet"), *dataset_dir.glob("rejects/*")]}
    assert listed == on_disk and all(s["path"].startswith(f"data/{s['split']}/") for s in manifest["shards"])
    assert manifest["rejects"] and all(path.endswith(".jsonl") for path in manifest["rejects"])
    assert sum(s["rows"] for s in manifest["shards"]) == manifest["counts"]["rows"]
    assert not [p for p in dataset_dir.rglob("*") if p.name.endswith(".tmp")]
    for shard in manifest["shards"]:  # each data file's recorded size and sha256 are the file's
        data = (dataset_dir / shard["path"]).read_bytes()
        assert (shard["bytes"], shard["sha256"]) == (len(data), hashlib.sha256(data).hexdigest()), shard["path"]


def test_summary_is_readable(default_run):
    out = default_run.stdout
    for needle in ("examples in", "written", "rejected", "audio_clipped", "examples/s", str(default_run.dataset_dir)):
        assert needle in out


def test_two_runs_are_byte_identical(default_run, repeat_run):
    for pattern in ("data/*/*.parquet", "rejects/*.jsonl", "vocab.json", "README.md", "_manifest.json"):
        assert tree_bytes(default_run.dataset_dir, pattern) == tree_bytes(repeat_run.dataset_dir, pattern)


def test_multiprocess_and_inprocess_write_identical_shards(augmented_multiprocess_run, augmented_inprocess_run):
    mp, ip = augmented_multiprocess_run.dataset_dir, augmented_inprocess_run.dataset_dir
    assert tree_bytes(mp) == tree_bytes(ip)
    manifest = read_manifest(mp)
    assert not manifest["partial_shards"] and len(manifest["shards"]) > 2
    assert manifest["counts"]["rows"] == 3 * manifest["counts"]["written"]


def beam_notices_in(console: str) -> list[str]:
    from mmfeat.runners.beam_notices import BENIGN_BEAM_NOTICES

    return [notice for notice in BENIGN_BEAM_NOTICES if notice in console]


def test_worker_runs_keep_beams_benign_notices_off_the_console(augmented_multiprocess_run):
    """Each SDK worker printed them, and the runner relayed them again, around the summary."""
    assert beam_notices_in(augmented_multiprocess_run.stderr + augmented_multiprocess_run.stdout) == []


def test_augmented_views(augmented_inprocess_run, default_run):
    table = read_rows(augmented_inprocess_run.dataset_dir)
    rows = table.to_pylist()
    mfcc = arrow_to_matrices(table["mfcc"])
    base = read_rows(default_run.dataset_dir)
    base_mfcc = dict(zip(base["sample_id"].to_pylist(), arrow_to_matrices(base["mfcc"])))
    for row, features in zip(rows, mfcc):
        assert features.shape[1] == 80  # 40 coefficients + deltas
        if row["view"] == 0:
            assert row["augment"] is None
            np.testing.assert_array_equal(features[:, :40], base_mfcc[row["sample_id"]])  # the original is untouched
        else:
            fired = {k: v for k, v in row["augment"].items() if k != "seed" and v is not None}
            same = features[:, :40].shape == base_mfcc[row["sample_id"]].shape and np.array_equal(
                features[:, :40], base_mfcc[row["sample_id"]]
            )
            assert row["augment"]["seed"] > 0 and same == (not fired), (row["sample_id"], row["view"], fired)
    assert {r["view"] for r in rows} == {0, 1, 2}


def test_wrong_input_exits_nonzero_with_the_expected_layout(tmp_path):
    (tmp_path / "images").mkdir()
    run = run_cli("run", "librispeech", "--input", str(tmp_path), "--output", str(tmp_path / "out"))
    assert run.returncode == 2 and "expected a LibriSpeech folder" in run.stderr
    assert not (tmp_path / "out").exists()


def test_invalid_config_fails_before_the_pipeline(librispeech_root, tmp_path):
    run = run_cli("run", "librispeech", "--input", str(librispeech_root), "--output", str(tmp_path), "--set", "mfcc.n_mfcc=lots")
    assert run.returncode == 2 and "mfcc.n_mfcc: expected an integer" in run.stderr
    assert not (tmp_path / "librispeech").exists()


def test_existing_output_is_refused_without_overwrite(default_run, librispeech_root):
    run = run_cli("run", "librispeech", "--input", str(librispeech_root), "--output", str(default_run.output))
    assert run.returncode == 2 and "--overwrite" in run.stderr


def test_help_explains_options():
    run = run_cli("run", "--help")
    for option in ("--input", "--output", "--config", "--set", "--overwrite", "--direct_num_workers"):
        assert option in run.stdout


def test_the_listing_travels_as_files_not_inside_the_job_graph(default_run, librispeech_root, tmp_path):
    import dataclasses

    import apache_beam as beam

    from mmfeat.pipelines.units import UNITS_DIR, UNITS_PER_FILE, read_units

    assert not (default_run.dataset_dir / UNITS_DIR).exists()  # removed once the run succeeded
    config = load_config("librispeech")
    spec = DATASETS["librispeech"]
    graph = spec.feature_graph(spec.discover(librispeech_root, config), config)
    big = [f"unit-{i:05d}-" + "x" * 10_000 for i in range(UNITS_PER_FILE + 500)]  # 25 MB of listing
    pipeline = beam.Pipeline()
    build_feature_pipeline(pipeline, dataclasses.replace(graph, units=big), config, tmp_path / "ls", runner="test")
    assert len(pipeline.to_runner_api().SerializeToString()) < 2_000_000  # file names only
    files = sorted((tmp_path / "ls" / UNITS_DIR).glob("units-*.pkl"))
    assert len(files) == 2 and [u for f in files for u in read_units(str(f))] == big


def test_test_pipeline_with_a_reused_vocabulary(default_run, librispeech_root, tmp_path):
    """The graph under Beam's TestPipeline, dev-clean only, ids from the training run's vocabulary."""
    vocab_path = default_run.dataset_dir / "vocab.json"
    config = load_config("librispeech", overrides=["librispeech.subsets=dev-clean", f"vocab.path={vocab_path}"])
    spec = DATASETS["librispeech"]
    graph = spec.feature_graph(spec.discover(librispeech_root, config), config)
    with BeamTestPipeline() as p:
        build_feature_pipeline(p, graph, config, tmp_path / "librispeech", runner="TestPipeline")
    dev = read_rows(tmp_path / "librispeech")
    assert (tmp_path / "librispeech" / "vocab.json").read_bytes() == vocab_path.read_bytes()
    expected = read_rows(default_run.dataset_dir, "dev-clean")
    assert dev["token_ids"].to_pylist() == expected["token_ids"].to_pylist()
    assert dev["mfcc"].equals(expected["mfcc"])
    assert json.loads((tmp_path / "librispeech" / "_manifest.json").read_text())["counts"]["input"] == 2


def test_lemmas_column_only_when_enabled(librispeech_root):
    from mmfeat.extractors.text import TextConfig
    from mmfeat.pipelines.transforms.text import text_columns

    assert "lemmas" not in declared_schema("librispeech", librispeech_root).names
    assert "lemmas" in declared_schema("librispeech", librispeech_root, "text.lemmatize=true").names
    from mmfeat.schemas.records import AudioUtterance, PreparedText

    prepared = PreparedText(texts=("hi",), tokens=(("hi",),), token_ids=((2,),), lemmas=(("hi",),))
    record = AudioUtterance("a", "s", "p", "/p", "HI", "1", "2", prepared=prepared)
    assert text_columns(record, TextConfig(lemmatize=True))["lemmas"] == ["hi"]
    assert "lemmas" not in text_columns(record, TextConfig())


def test_manifest_statistics_match_the_written_training_rows(default_run):
    statistics = read_manifest(default_run.dataset_dir)["statistics"]
    train = read_rows(default_run.dataset_dir, "train-clean-100")
    frames = np.concatenate(arrow_to_matrices(train["mfcc"])).astype(np.float64)
    np.testing.assert_allclose(statistics["normalisation"]["mfcc"]["mean"], frames.mean(axis=0), atol=1e-4)
    np.testing.assert_allclose(statistics["normalisation"]["mfcc"]["std"], frames.std(axis=0), atol=1e-4)
    summary = statistics["splits"]["train-clean-100"]
    assert summary["rows"] == train.num_rows and summary["numeric"]["duration_s"]["count"] == train.num_rows
    assert summary["tokens"]["token_ids"]["coverage"] == 1.0  # the vocabulary is built on this split
    assert statistics["train_splits"] == ["train-clean-100"] and set(statistics["splits"]) == {"train-clean-100", "dev-clean"}


def test_a_user_supplied_torchscript_audio_encoder_adds_an_embedding_per_view(librispeech_root, tmp_path):
    torch = pytest.importorskip("torch")
    from tests.conftest import run_librispeech
    from tests.encoder_models import TinyAudioNet

    model = tmp_path / "audio.pt"
    torch.jit.script(TinyAudioNet()).save(str(model))
    settings = ["encode.audio.name=torchscript_audio", f"encode.audio.weights={model}", "encode.audio.output_dim=4"]
    run = run_librispeech(librispeech_root, tmp_path / "out", *[a for s in settings for a in ("--set", s)])
    table = read_rows(run.dataset_dir)
    embeddings = np.stack(table["audio_embedding"].to_numpy(zero_copy_only=False))
    assert embeddings.shape == (18, 4)
    # the model saw each clean waveform whole: its 4th output is the length in seconds
    np.testing.assert_allclose(embeddings[:, 3], table["num_samples"].to_numpy() / 16000, rtol=1e-6)
    assert (embeddings[:, 2] <= 1.0).all() and (embeddings[:, 1] > 0).all()
    # length-aware batching (Beam's length buckets): other batches, the same embeddings
    buckets = ["encode.audio.max_batch_duration_secs=0.5", "encode.audio.length_buckets=[24000,48000]"]
    bucketed = run_librispeech(librispeech_root, tmp_path / "bucketed", *[a for s in settings + buckets for a in ("--set", s)])
    again = np.stack(read_rows(bucketed.dataset_dir)["audio_embedding"].to_numpy(zero_copy_only=False))
    np.testing.assert_allclose(again, embeddings, rtol=1e-5, atol=1e-6)


def test_the_pretrained_speaker_encoder_adds_a_unit_norm_embedding_per_view(librispeech_root, tmp_path):
    pytest.importorskip("resemblyzer")
    from tests.conftest import run_cli, run_librispeech

    run = run_librispeech(librispeech_root, tmp_path / "out", "--set", "encode.audio.name=resemblyzer")
    table = read_rows(run.dataset_dir)
    embeddings = np.stack(table["audio_embedding"].to_numpy(zero_copy_only=False))
    assert embeddings.shape == (table.num_rows, 256) and np.allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)
    wrong_rate = run_cli(
        *("run", "librispeech", "--input", str(librispeech_root), "--output", str(tmp_path / "x")),
        *("--set", "encode.audio.name=resemblyzer", "--set", "audio.sample_rate=22050"),
    )
    assert wrong_rate.returncode == 2 and "set audio.sample_rate=16000" in wrong_rate.stderr


def test_dask_runner_writes_the_same_bytes_as_the_direct_runner(librispeech_root, tmp_path):
    """With several shards per split (their count comes from a side input of counts per split): one Dask run, not
    also one at the default shard size, whose single shard per split this one covers."""
    pytest.importorskip("distributed")
    from tests.conftest import run_librispeech

    small = ("--set", "output.rows_per_shard=4")
    dask = run_librispeech(librispeech_root, tmp_path / "dask4", "--runner=dask", *small)
    assert "DaskRunner" in dask.stdout and beam_notices_in(dask.stderr) == []
    direct = run_librispeech(librispeech_root, tmp_path / "direct4", *small)
    shards = read_manifest(direct.dataset_dir)["shards"]
    assert len(shards) > 3 and read_manifest(dask.dataset_dir)["shards"] == shards
    assert read_manifest(dask.dataset_dir)["counts"] == read_manifest(direct.dataset_dir)["counts"]
    assert tree_bytes(dask.dataset_dir) == tree_bytes(direct.dataset_dir)


def test_coco_with_duplicate_removal_writes_the_same_bytes_on_dask(coco_run, coco_root, tmp_path):
    """Duplicate removal rewrites shards after a side input computed from the writer's results: on Dask
    that upstream ran twice (the second run overwrote the pruned shards) before runners/dask/fix.py."""
    pytest.importorskip("distributed")
    from tests.conftest import run_coco

    dask = run_coco(coco_root, tmp_path / "dask", "--runner=dask", "--dask_workers=2")
    assert "DaskRunner" in dask.stdout
    counts = read_manifest(dask.dataset_dir)["counts"]
    assert counts == read_manifest(coco_run.dataset_dir)["counts"] and counts["rejected_by_reason"]["duplicate_image"] >= 1
    assert tree_bytes(dask.dataset_dir) == tree_bytes(coco_run.dataset_dir)


def test_resume_finishes_an_interrupted_run_without_redoing_finished_shards(librispeech_root, tmp_path):
    import shutil

    from tests.conftest import run_librispeech

    small = ("--set", "output.rows_per_shard=4")
    full = run_librispeech(librispeech_root, tmp_path / "full", *small)
    shutil.copytree(full.output, tmp_path / "cut")
    cut = tmp_path / "cut" / "librispeech"
    # what a kill leaves: no manifest, one shard without its marker and files, a writer's temporary file
    (cut / "_manifest.json").unlink()
    lost = sorted((cut / "_shards").glob("train-clean-100-*.json"))[1]
    lost.unlink()
    for path in cut.rglob(f"{lost.stem}.parquet"):
        path.unlink()
    (cut / "data" / "train-clean-100" / ".half-written.parquet.0a1b.tmp").write_bytes(b"PAR1")
    kept = sorted((cut / "data" / "train-clean-100").glob("*.parquet"))[0]
    kept_mtime = kept.stat().st_mtime_ns

    refused = run_cli("run", "librispeech", "--input", str(librispeech_root), "--output", str(tmp_path / "cut"), *small)
    assert refused.returncode == 2 and "--resume" in refused.stderr
    args = ("run", "librispeech", "--input", str(librispeech_root), "--output", str(tmp_path / "cut"), "--resume")
    other = run_cli(*args, "--set", "mfcc.n_mfcc=13")
    assert other.returncode == 2 and "another run" in other.stderr  # a different configuration is not mixed in

    run_librispeech(librispeech_root, tmp_path / "cut", *small, "--resume")
    assert tree_bytes(cut) == tree_bytes(full.dataset_dir)
    assert kept.stat().st_mtime_ns == kept_mtime  # a finished shard is not rewritten
    assert not list(cut.rglob("*.tmp"))
    assert read_manifest(cut)["counts"] == read_manifest(full.dataset_dir)["counts"]
    again = run_librispeech(librispeech_root, tmp_path / "cut", *small, "--resume")
    assert "already complete" in again.stdout


def test_shards_open_in_hugging_face_datasets_duckdb_and_polars(default_run, tmp_path, monkeypatch):
    """The README's one-liners, on a real output: no mmfeat code on the reading side."""
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")  # local files only: nothing may reach for the hub
    datasets = pytest.importorskip("datasets")
    out = default_run.dataset_dir
    expected = read_rows(out, "train-clean-100")
    files = sorted(str(p) for p in (out / "data" / "train-clean-100").glob("*.parquet"))
    train = datasets.load_dataset("parquet", data_files={"train": files}, cache_dir=str(tmp_path / "hf"))["train"]
    assert train.num_rows == expected.num_rows
    row = train.with_format("numpy").sort("sample_id")[0]
    first = expected.slice(0, 1).to_pylist()[0]
    assert row["mfcc"].shape == (first["mfcc_frames"], 40) and row["mfcc"].dtype == np.float32
    np.testing.assert_array_equal(row["token_ids"], first["token_ids"])

    duckdb = pytest.importorskip("duckdb")
    frames = duckdb.sql(f"SELECT sample_id, len(mfcc) FROM '{out}/data/train-clean-100/*.parquet' ORDER BY sample_id").fetchall()
    assert frames == list(zip(expected["sample_id"].to_pylist(), expected["mfcc_frames"].to_pylist()))
    pl = pytest.importorskip("polars")
    table = pl.read_parquet(f"{out}/data/train-clean-100/*.parquet").sort("sample_id")
    assert table["sample_id"].to_list() == expected["sample_id"].to_pylist()
    assert len(table["mfcc"][0]) == first["mfcc_frames"]


def test_run_stats_add_up_to_the_manifests_counts(default_run):
    """``_run_stats.json``: each stage's rejects are the reject rows it wrote, and the first stage saw every input
    the listing did not reject; the writer wrote the manifest's rows."""
    from mmfeat.pipelines.run_stats import read_run_stats

    stats = read_run_stats(default_run.dataset_dir)
    manifest = read_manifest(default_run.dataset_dir)
    rejects = store_rejects(default_run.dataset_dir, manifest["rejects"])
    by_stage = Counter(rejects["stage"].to_pylist())
    stages = stats["stages"]
    assert list(stages) == ["clean_audio", "augment_audio", "extract_mfcc"]
    assert all(stages[name]["rejected"] == by_stage.get(name, 0) for name in stages)
    before = sum(n for stage, n in by_stage.items() if stage not in stages)  # parsing the listing
    assert stages["clean_audio"]["in"] + before == manifest["counts"]["input"]
    assert stages["extract_mfcc"]["out"] == stats["writer"]["rows_written"] == manifest["counts"]["rows"]
    assert all(stages[name]["cpu_s"] > 0 and stages[name]["wall_s"] > 0 for name in ("clean_audio", "extract_mfcc"))
    assert stats["peak_rss_mib"] > 50 and stats["cpu_s"] > 0
