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


def test_variable_length_clips_round_trip_through_parquet_and_open_elsewhere(tmp_path):
    from mmfeat.pipelines.io import byte_stream_split_columns, dictionary_columns
    from mmfeat.schemas.reader import collate_features, decode_column
    from mmfeat.schemas.tensors import arrow_to_clips, clip_type, clips_to_arrow

    rng = np.random.default_rng(0)
    clips = [rng.integers(0, 256, (n, 6, 6, 3), dtype=np.uint8) for n in (3, 1, 0, 5)]
    data_type = clip_type(6, 6)
    table = pa.table({"frames": clips_to_arrow(clips, data_type)})
    split = byte_stream_split_columns(table.schema)
    assert dictionary_columns(table.schema) == [] and split == ["frames.list.element.list.element"]
    pq.write_table(table, tmp_path / "c.parquet", use_dictionary=False, use_byte_stream_split=split)
    back = pq.read_table(tmp_path / "c.parquet")["frames"]
    assert back.type == data_type
    for original, decoded in zip(clips, arrow_to_clips(back)):
        assert decoded.shape == original.shape and decoded.dtype == np.uint8
        np.testing.assert_array_equal(decoded, original)
    rows = [{"frames": clip} for clip in decode_column(back)]
    batch = collate_features(rows)
    assert tuple(batch["frames"].shape) == (4, 5, 6, 6, 3) and batch["frames_lengths"].tolist() == [3, 1, 0, 5]
    duckdb = pytest.importorskip("duckdb")
    assert duckdb.sql(f"select len(frames) from '{tmp_path / 'c.parquet'}'").fetchall() == [(3,), (1,), (0,), (5,)]
    last = duckdb.sql(f"select frames[5][108] from '{tmp_path / 'c.parquet'}' where len(frames) = 5").fetchall()[0][0]
    assert last == clips[3][4].reshape(-1)[107]  # values through BYTE_STREAM_SPLIT, as DuckDB reads them
    polars = pytest.importorskip("polars")
    assert polars.read_parquet(tmp_path / "c.parquet")["frames"][0][2].to_list() == clips[0][2].reshape(-1).tolist()
    with pytest.raises(ValueError, match=r"\(frames, 6, 6, 3\)"):
        clips_to_arrow([np.zeros((2, 5, 6, 3), np.uint8)], data_type)
