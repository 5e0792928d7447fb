import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mmfeat.schemas.fields import REJECTS_SCHEMA, assemble_schema, rows_to_table
from mmfeat.schemas.tensors import arrow_to_matrices, matrices_to_arrow, matrix_type


def test_matrix_round_trip_through_parquet(tmp_path):
    rng = np.random.default_rng(0)
    mats = [rng.standard_normal((n, 5)).astype(np.float32) for n in (3, 0, 7)] + [None]
    column = matrices_to_arrow(mats, matrix_type(5))
    pq.write_table(pa.table({"m": column}), tmp_path / "t.parquet")
    back = arrow_to_matrices(pq.read_table(tmp_path / "t.parquet")["m"])
    for a, b in zip(mats, back):
        if a is None:
            assert b is None
        else:
            assert b.dtype == np.float32 and b.shape == a.shape
            np.testing.assert_array_equal(a, b)


def test_matrix_shape_is_checked():
    with pytest.raises(ValueError, match=r"\(frames, 5\)"):
        matrices_to_arrow([np.zeros((2, 4), np.float32)], matrix_type(5))


def test_assemble_schema_rejects_duplicates_and_records_version():
    schema = assemble_schema([pa.field("a", pa.int32())], [pa.field("b", pa.string())], table="t")
    assert schema.metadata[b"mmfeat.schema_version"] and schema.names == ["a", "b"]
    with pytest.raises(ValueError, match="declared twice"):
        assemble_schema([pa.field("a", pa.int32())], [pa.field("a", pa.int64())], table="t")


def test_rows_to_table_names_a_missing_column():
    with pytest.raises(KeyError, match="missing column 'split' of table 'rejects'"):
        rows_to_table([{"sample_id": "x"}], REJECTS_SCHEMA)


def test_opens_in_duckdb_and_polars_without_custom_code(tmp_path):
    path = tmp_path / "m.parquet"
    pq.write_table(pa.table({"m": matrices_to_arrow([np.ones((2, 3), np.float32)], matrix_type(3))}), path)
    duckdb = pytest.importorskip("duckdb")
    assert duckdb.sql(f"select len(m) as n from '{path}'").fetchall() == [(2,)]
    pl = pytest.importorskip("polars")
    assert pl.read_parquet(path)["m"].to_list() == [[[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]]
