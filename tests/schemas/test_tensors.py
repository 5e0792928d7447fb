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


def _images_and_clips(rows: int = 7):
    from mmfeat.schemas.tensors import clip_type, clips_to_arrow, image_tensor_type, tensors_to_arrow

    rng = np.random.default_rng(1)
    images = list(rng.integers(0, 256, (rows, 4, 5, 3), dtype=np.uint8))
    clips = [rng.integers(0, 256, (n % 4, 2, 3, 3), dtype=np.uint8) for n in range(rows)]
    table = pa.table(
        {
            "image": tensors_to_arrow(images, image_tensor_type(4, 5)),
            "frames": clips_to_arrow(clips, clip_type(2, 3)),
            "n": pa.array(range(rows), pa.int32()),
        }
    )
    return pa.concat_tables([table.slice(0, 3), table.slice(3)]), images, clips  # two chunks


def test_byte_tensors_are_stored_as_bytes_and_restored_without_loss(tmp_path):
    from mmfeat.schemas.tensors import BYTE_TENSOR_KEY, pack_byte_tensors, read_parquet, unpack_byte_tensors, unpacked_schema

    table, images, clips = _images_and_clips()
    for part in (table, table.slice(2, 4), table.slice(6), table.slice(0, 0)):
        packed = pack_byte_tensors(part)
        assert packed.schema.field("image").type == pa.large_binary()
        assert packed.schema.field("frames").type == pa.list_(pa.large_binary())
        assert packed["image"].to_pylist() == [images[n].tobytes() for n in part["n"].to_pylist()]
        assert b'"shape": [4, 5, 3]' in packed.schema.field("image").metadata[BYTE_TENSOR_KEY]
        assert unpack_byte_tensors(packed).equals(part) and unpacked_schema(packed.schema).equals(part.schema)
        pq.write_table(packed, tmp_path / "p.parquet")
        assert read_parquet(tmp_path / "p.parquet").equals(part.combine_chunks())
    assert unpack_byte_tensors(table).equals(table)  # nothing packed: unchanged
    # another tool that rewrote the column as binary (32-bit offsets) keeps the field metadata: still restored
    packed = pack_byte_tensors(table)
    narrowed = packed.cast(
        pa.schema([packed.schema.field("image").with_type(pa.binary()), packed.schema.field("frames"), packed.schema.field("n")])
    )
    assert unpack_byte_tensors(narrowed).equals(table)


def test_bytes_of_the_wrong_length_or_nulls_fail_loudly():
    from mmfeat.schemas.tensors import pack_byte_tensors, unpack_byte_tensors

    table, _, _ = _images_and_clips()
    packed = pack_byte_tensors(table)
    wrong = pa.array([b"\0" * 59] * len(table), pa.large_binary())
    with pytest.raises(ValueError, match="not 60 bytes long"):
        unpack_byte_tensors(packed.set_column(0, packed.schema.field("image"), wrong))
    nulls = pa.array([None] * len(table), pa.large_binary())
    with pytest.raises(ValueError, match="nulls"):
        unpack_byte_tensors(packed.set_column(0, packed.schema.field("image"), nulls))


def test_stored_bytes_open_in_hugging_face_datasets_duckdb_and_polars(tmp_path, monkeypatch):
    """Images and clips written by mmfeat's writer: every tool reads them as bytes, reshaped by the recorded shape."""
    import json

    from mmfeat.pipelines.config import OutputConfig
    from mmfeat.pipelines.io import write_parquet_atomically
    from mmfeat.schemas.tensors import BYTE_TENSOR_KEY

    table, images, clips = _images_and_clips()
    path = tmp_path / "shard.parquet"
    write_parquet_atomically(table, path, OutputConfig())
    spec = json.loads(pq.read_schema(path).field("image").metadata[BYTE_TENSOR_KEY])
    assert spec == {"clip": False, "dim_names": ["H", "W", "C"], "shape": [4, 5, 3], "value_type": "uint8"}
    duckdb = pytest.importorskip("duckdb")
    first = duckdb.sql(f"select image, len(frames) from '{path}' order by n").fetchall()
    assert np.array_equal(np.frombuffer(first[0][0], np.uint8).reshape(spec["shape"]), images[0])
    assert [n for _, n in first] == [len(c) for c in clips]
    polars = pytest.importorskip("polars")
    frames = polars.read_parquet(path)["frames"][3].to_list()
    assert [np.frombuffer(f, np.uint8).reshape(2, 3, 3).tolist() for f in frames] == clips[3].tolist()
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    datasets = pytest.importorskip("datasets")
    loaded = datasets.load_dataset("parquet", data_files={"train": [str(path)]}, cache_dir=str(tmp_path / "hf"))["train"]
    row = loaded[6]
    assert np.array_equal(np.frombuffer(row["image"], np.uint8).reshape(4, 5, 3), images[6])
    assert len(row["frames"]) == len(clips[6])


def test_the_tensor_layout_keeps_arrow_canonical_tensors(tmp_path):
    from mmfeat.pipelines.config import OutputConfig
    from mmfeat.pipelines.io import write_parquet_atomically

    table, _, _ = _images_and_clips()
    write_parquet_atomically(table, tmp_path / "t.parquet", OutputConfig(byte_tensors="tensor"))
    assert pq.read_table(tmp_path / "t.parquet").equals(table.combine_chunks())
    with pytest.raises(ValueError, match="byte_tensors"):
        OutputConfig(byte_tensors="jpeg")
