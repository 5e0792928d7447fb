"""A finished store opens whole in the tools users read Parquet with, and every one of them returns exactly the
data rows with their full schema: never a reject, a report image or a dataset card read as data."""

import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest

from mmfeat.schemas.layout import hub_split_names
from mmfeat.schemas.manifest import read_manifest

STORES = ["default_run", "coco_run", "iemocap_run"]  # LibriSpeech, COCO, IEMOCAP


@pytest.fixture(scope="module", params=STORES)
def store(request):
    dataset_dir = request.getfixturevalue(request.param).dataset_dir
    manifest = read_manifest(dataset_dir)
    assert manifest["rejects"], "each sample store has rejects: the point is that no tool reads them as data"
    stored = pq.read_schema(dataset_dir / manifest["shards"][0]["path"])
    return dataset_dir, manifest, stored


def test_duckdb_and_polars_globs_read_only_data(store):
    duckdb = pytest.importorskip("duckdb")
    pl = pytest.importorskip("polars")
    dataset_dir, manifest, stored = store
    rows = manifest["counts"]["rows"]
    glob = f"{dataset_dir}/**/*.parquet"
    assert duckdb.sql(f"SELECT count(*) FROM '{glob}'").fetchall() == [(rows,)]
    assert [c[0] for c in duckdb.sql(f"DESCRIBE SELECT * FROM '{glob}'").fetchall()] == stored.names
    frame = pl.scan_parquet(glob)
    assert frame.select(pl.len()).collect().item() == rows and frame.collect_schema().names() == stored.names


def test_pyarrow_and_pandas_open_the_data_folder(store):
    pd = pytest.importorskip("pandas")
    dataset_dir, manifest, stored = store
    data = pads.dataset(dataset_dir / "data", format="parquet")
    assert data.count_rows() == manifest["counts"]["rows"] and data.schema.equals(stored, check_metadata=False)
    frame = pd.read_parquet(dataset_dir / "data", columns=["sample_id", "split", "view"])
    assert len(frame) == manifest["counts"]["rows"]
    assert frame.groupby("split").size().to_dict() == manifest["counts"]["rows_by_split"]


def test_hugging_face_datasets_loads_the_folder_by_its_card(store, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")  # local files only
    datasets = pytest.importorskip("datasets")
    dataset_dir, manifest, stored = store
    loaded = datasets.load_dataset(str(dataset_dir), cache_dir=str(tmp_path / "hf"))
    names = hub_split_names(list(manifest["counts"]["rows_by_split"]))
    assert {names[s]: n for s, n in manifest["counts"]["rows_by_split"].items()} == loaded.num_rows
    for split in loaded.values():
        assert split.column_names == stored.names
        assert set(split.unique("split")) <= set(names)


def test_split_names_become_valid_hub_names():
    assert hub_split_names(["train-clean-100", "dev.clean", "train_clean_100", "a b"]) == {
        "a b": "a_b",
        "dev.clean": "dev_clean",
        "train-clean-100": "train_clean_100",
        "train_clean_100": "train_clean_100_2",
    }
