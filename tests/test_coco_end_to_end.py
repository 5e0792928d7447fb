"""The COCO pipeline as a user runs it, with the Parquet read back."""

import json

import numpy as np
import pyarrow.dataset as ds
import pytest

from mmfeat.extractors import boxes as geometry
from mmfeat.extractors.augment.image import ImageAugmentParams, render_view
from mmfeat.extractors.image import check_image, decode_image
from mmfeat.runners.config import load_config
from mmfeat.schemas.manifest import read_manifest
from mmfeat.schemas.rejects import store_rejects
from mmfeat.schemas.tensors import arrow_to_tensors, unpack_byte_tensors
from tests.conftest import COCO_AUGMENTED, declared_schema, run_cli

pytestmark = pytest.mark.slow

EXPECTED_REJECTS = {
    "annotation_malformed": 1,
    "duplicate_image": 1,
    "image_aspect_ratio": 1,
    "image_empty": 1,
    "image_missing": 1,
    "image_too_large": 1,
    "image_too_small": 1,
    "image_truncated": 1,
    "image_undecodable": 1,
    "near_duplicate_image": 1,
    "no_captions": 1,
    "orphan_annotation": 1,
    "path_escapes_root": 1,
}


def read_rows(dataset_dir):
    paths = [dataset_dir / s["path"] for s in read_manifest(dataset_dir)["shards"]]
    table = unpack_byte_tensors(ds.dataset(paths, format="parquet").to_table())
    return table.sort_by([("sample_id", "ascending"), ("view", "ascending")])


def test_counts_balance_every_broken_case_has_its_reason_and_leakage_is_reported(coco_run):
    manifest = read_manifest(coco_run.dataset_dir)
    counts = manifest["counts"]
    assert counts["input"] == counts["written"] + counts["rejected"] == 29
    assert counts["rejected_by_reason"] == EXPECTED_REJECTS
    rejects = store_rejects(coco_run.dataset_dir, manifest["rejects"]).to_pylist()
    assert len(rejects) == counts["rejected"] and all(r["detail"] for r in rejects)
    by_id = {r["sample_id"]: r for r in rejects}
    assert by_id["000000000301"]["detail"] == "same bytes as 000000000100 (kept)"
    assert "near-duplicate of 000000000107" in by_id["000000000302"]["detail"]
    assert [(m["split"], m["sample_id"], m["of_sample_id"], m["kind"]) for m in manifest["leakage"]] == [
        ("val2017", "000000000950", "000000000114", "exact")
    ]
    assert "leakage" in coco_run.stdout and "rejected" in coco_run.stdout


def test_the_summary_is_all_that_a_run_prints_on_stdout(coco_run):
    """The image encoder's library printed "Loaded pretrained weights ..." into it (once per worker)."""
    assert coco_run.stdout.startswith("mmfeat coco: done in") and "Loaded pretrained" not in coco_run.stdout


def test_rows_hold_tensor_captions_tokens_boxes_and_embedding(coco_run, coco_root):
    table = read_rows(coco_run.dataset_dir)
    assert table.schema.equals(declared_schema("coco", coco_root), check_metadata=False)
    assert table.num_rows == 16 and set(table["view"].to_pylist()) == {0}
    images = arrow_to_tensors(table["image"])
    assert images.shape == (16, 224, 224, 3) and images.dtype == np.uint8
    row = table.filter(ds.field("sample_id") == "000000000100").to_pylist()[0]
    assert row["captions"][0] == "A ginger tabby cat looking to the side." and len(row["caption_tokens"]) == 5
    assert row["caption_tokens"][0][:3] == ["a", "ginger", "tabby"] and all(i > 1 for i in row["caption_token_ids"][0])
    assert row["box_categories"] == ["cat"] and (row["width"], row["height"]) == (451, 300)
    rotated = table.filter(ds.field("sample_id") == "000000000205").to_pylist()[0]
    assert (rotated["orientation"], rotated["width"], rotated["height"]) == (6, 300, 451)  # upright, portrait
    # The cat box (95, 10, 300, 290) on the stored 451x300 pixels, turned 90 degrees clockwise with them, is
    # (0, 95, 290, 300) upright; the centre crop starts at y=75.5 and scales by 224/300 (to within half a pixel).
    np.testing.assert_allclose(rotated["boxes"][0], [0.0, 19.5 * 224 / 300, 290 * 224 / 300, 280.5 * 224 / 300], atol=0.5)


def test_pipeline_embeddings_equal_a_direct_model_call(coco_run):
    import torch

    from mmfeat.extractors.encoders import get_encoder
    from mmfeat.extractors.encoders.base import EncoderConfig

    table = read_rows(coco_run.dataset_dir)
    spec = get_encoder("efficientnet_lite0")
    model = spec.load(EncoderConfig(name=spec.name))
    with torch.inference_mode():
        direct = spec.forward(model, torch.from_numpy(arrow_to_tensors(table["image"]))).numpy()
    stored = np.stack(table["image_embedding"].to_numpy(zero_copy_only=False))
    assert stored.shape == (16, 1280)
    np.testing.assert_allclose(stored, direct, rtol=0, atol=1e-4)  # batch composition differs: float rounding only


def test_augmented_views_reproduce_from_their_recorded_parameters(coco_augmented_inprocess_run, coco_root):
    config = load_config("coco", overrides=[COCO_AUGMENTED[i + 1] for i in range(0, len(COCO_AUGMENTED), 2)])
    table = read_rows(coco_augmented_inprocess_run.dataset_dir)
    assert set(table["view"].to_pylist()) == {0, 1, 2} and table.num_rows == 16 * 3
    assert table["image_jpeg"].null_count == 0
    annotations = json.loads((coco_root / "annotations" / "instances_train2017.json").read_text())
    boxes_of = {}
    for ann in sorted(annotations["annotations"], key=lambda a: a["id"]):
        boxes_of.setdefault(ann["image_id"], []).append(ann["bbox"])
    checked = 0
    for row, image in zip(table.to_pylist(), arrow_to_tensors(table["image"])):
        if row["view"] == 0 or row["orientation"] != 1:
            continue
        data = (coco_root / row["source_path"]).read_bytes()
        decoded = decode_image(data, check_image(data, config.image), config.image, min_side_needed=163)
        recorded = {k: v for k, v in row["augment"].items() if k != "seed"}
        params = ImageAugmentParams(**{**recorded, "crop": tuple(recorded["crop"]) if recorded["crop"] else None})
        view = render_view(decoded, 96, params)
        assert np.array_equal(view.pixels, image), row["sample_id"]
        if row["image_id"] in boxes_of:
            expected, _ = geometry.transform_boxes(np.array(boxes_of[row["image_id"]]), view.matrix, 96, 96)
            np.testing.assert_allclose(np.array(row["boxes"]).reshape(-1, 4), expected, atol=1e-4)
        checked += 1
    assert checked >= 20


def test_shards_do_not_depend_on_workers_or_runs(coco_augmented_inprocess_run, coco_augmented_multiprocess_run):
    """Every column is bit-identical, the text encoder's caption embeddings included: an embedding must not
    depend on the batch RunInference's adaptive batching put it in (inference.EncodeModelHandler)."""
    one, two = (
        {p.relative_to(run.dataset_dir).as_posix(): p.read_bytes() for p in sorted(run.dataset_dir.rglob("*.parquet"))}
        for run in (coco_augmented_inprocess_run, coco_augmented_multiprocess_run)
    )
    assert len(one) >= 4 and one.keys() == two.keys()
    assert [name for name in one if one[name] != two[name]] == []


def test_an_encoder_that_cannot_load_is_refused_before_the_run_with_what_to_do(tmp_path, coco_root):
    for name, weights, expected in (
        ("no_such_encoder", "x", "unknown encoder 'no_such_encoder'"),
        ("torchvision_image", "resnet50", "torchvision"),  # not importable here, or not in the hub cache
        ("transformers_image", str(tmp_path / "missing"), "neither a folder nor a cached hub model"),
    ):
        settings = ("--set", f"encode.image.name={name}", "--set", f"encode.image.weights={weights}")
        run = run_cli("run", "coco", "--input", str(coco_root), "--output", str(tmp_path / name), *settings)
        assert run.returncode == 2 and expected in run.stderr and "Traceback" not in run.stderr, run.stderr[-2000:]


def test_cli_refuses_a_folder_that_is_not_coco_and_names_a_broken_annotation_file(tmp_path, coco_root):
    run = run_cli("run", "coco", "--input", str(tmp_path), "--output", str(tmp_path / "out"))
    assert run.returncode == 2 and "annotations/captions_<split>.json" in run.stderr
    broken = tmp_path / "broken"
    (broken / "annotations").mkdir(parents=True)
    (broken / "train2017").mkdir()
    (broken / "annotations" / "captions_train2017.json").write_text('{"images": [{"id": 1, "file_name": "a.jpg"}, {"id": ')
    run = run_cli("run", "coco", "--input", str(broken), "--output", str(tmp_path / "out"))
    assert run.returncode == 2 and "captions_train2017.json: not a valid COCO annotation file" in run.stderr


def test_caption_embeddings_have_one_row_per_caption_and_match_a_direct_call(coco_augmented_inprocess_run):
    import torch

    from mmfeat.extractors.encoders import get_encoder
    from mmfeat.extractors.encoders.base import EncoderConfig
    from mmfeat.schemas.tensors import arrow_to_matrices

    table = read_rows(coco_augmented_inprocess_run.dataset_dir)
    embeddings = arrow_to_matrices(table["caption_embeddings"])
    captions = table["captions"].to_pylist()
    assert [len(m) for m in embeddings] == [len(c) for c in captions]
    spec = get_encoder("minilm_l6")
    model = spec.load(EncoderConfig(name=spec.name))
    with torch.inference_mode():
        direct = spec.forward(model, spec.collate([spec.preprocess(c) for c in captions[0]])).numpy()
    np.testing.assert_allclose(embeddings[0], direct, atol=1e-5)


def test_the_training_reader_round_trips_every_tensor_column(coco_run):
    from mmfeat.schemas.reader import FeatureDataset, collate_features

    table = read_rows(coco_run.dataset_dir)
    data = FeatureDataset(coco_run.dataset_dir, columns=["sample_id", "image", "image_embedding", "boxes", "caption_token_ids"])
    rows = sorted(data.partition(0, 1), key=lambda r: r["sample_id"])
    assert [r["sample_id"] for r in rows] == table["sample_id"].to_pylist()
    assert np.array_equal(np.stack([r["image"] for r in rows]), arrow_to_tensors(table["image"]))
    assert rows[0]["image_embedding"].shape == (1280,) and rows[0]["boxes"].shape == (1, 4)
    batch = collate_features(rows[:4])
    assert tuple(batch["image"].shape) == (4, 224, 224, 3) and batch["boxes_lengths"].tolist() == [1, 1, 1, 0]


def test_the_reader_returns_box_category_ids_from_the_manifests_label_map(coco_run):
    from mmfeat.schemas.reader import FeatureDataset

    ids = read_manifest(coco_run.dataset_dir)["statistics"]["label_ids"]["box_categories"]
    assert list(ids) == sorted(ids) and sorted(ids.values()) == list(range(len(ids)))
    data = FeatureDataset(coco_run.dataset_dir, columns=["sample_id"], label_ids=["box_categories"])
    rows = {r["sample_id"]: r for r in data.partition(0, 1)}
    table = read_rows(coco_run.dataset_dir)
    for sample_id, categories in zip(table["sample_id"].to_pylist(), table["box_categories"].to_pylist()):
        assert list(rows[sample_id]) == ["sample_id", "box_categories_id"]  # the label column itself was not asked for
        assert list(rows[sample_id]["box_categories_id"]) == [ids[c] for c in categories]
    with pytest.raises(ValueError, match="label columns: box_categories"):
        FeatureDataset(coco_run.dataset_dir, label_ids=["caption_texts"])


def test_inspect_prints_counts_schema_and_decoded_rows(coco_run):
    run = run_cli("inspect", str(coco_run.dataset_dir), "--rows", "1")
    assert run.returncode == 0, run.stderr
    assert "examples in" in run.stdout and "schema:" in run.stdout and "uint8[224, 224, 3]" in run.stdout
    assert "(stored as large_binary: output.byte_tensors=bytes)" in run.stdout


def test_inspect_shows_reject_rows_and_names_an_unknown_split_plainly(coco_run, capsys):
    """In-process (the command's own ``main``): the reading commands need no fresh interpreter to be tested."""
    from mmfeat.runners.cli import main

    def inspect(*args: str) -> tuple[int, str, str]:
        code = main(["inspect", str(coco_run.dataset_dir), *args])
        out = capsys.readouterr()
        return code, out.out, out.err

    rejects = read_manifest(coco_run.dataset_dir)["counts"]["rejected"]
    code, out, err = inspect("--rejects", "--rows", "100")
    assert code == 0, err
    assert out.count("\nreject ") >= rejects and "  reason  " in out and "  detail  " in out
    code, out, _ = inspect("--rejects", "--reason", "image_empty")
    assert out.count("\nreject ") == 1 and "zero-byte file" in out
    code, _, err = inspect("--rejects", "--reason", "nope")
    assert code == 2 and "(reasons: annotation_malformed, " in err
    code, _, err = inspect("--split", "nope")
    assert code == 2 and "no shards for split nope in" in err and "[" not in err


def test_hugging_face_datasets_opens_the_coco_table_and_its_image_bytes_are_the_images(coco_run, tmp_path, monkeypatch):
    """No mmfeat code on the reading side: the images are bytes, reshaped by the shape in the field metadata."""
    import json

    import pyarrow.parquet as pq

    from mmfeat.schemas.tensors import BYTE_TENSOR_KEY

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    datasets = pytest.importorskip("datasets")
    files = sorted(str(coco_run.dataset_dir / s["path"]) for s in read_manifest(coco_run.dataset_dir)["shards"])
    shape = json.loads(pq.read_schema(files[0]).field("image").metadata[BYTE_TENSOR_KEY])["shape"]
    loaded = datasets.load_dataset("parquet", data_files={"train": files}, cache_dir=str(tmp_path / "hf"))["train"]
    loaded = loaded.sort("sample_id")  # the default format: bytes (numpy's np.bytes_ drops trailing zero bytes)
    expected = read_rows(coco_run.dataset_dir)
    assert loaded.num_rows == expected.num_rows and shape == [224, 224, 3]
    images = np.stack([np.frombuffer(row["image"], np.uint8).reshape(shape) for row in loaded])
    assert np.array_equal(images, arrow_to_tensors(expected["image"]))


def test_the_embedding_column_names_its_encoder_and_weights(coco_run):
    import hashlib

    import pyarrow.parquet as pq

    from mmfeat.extractors.encoders.base import EncoderConfig
    from mmfeat.extractors.encoders.image_efficientnet import weights_file
    from mmfeat.pipelines.run_stats import read_run_stats

    shard = coco_run.dataset_dir / read_manifest(coco_run.dataset_dir)["shards"][0]["path"]
    meta = pq.read_schema(shard).field("image_embedding").metadata
    with open(weights_file(EncoderConfig(name="efficientnet_lite0")), "rb") as weights:
        expected = hashlib.sha256(weights.read()).hexdigest()
    assert meta[b"mmfeat.encoder"] == b"efficientnet_lite0" and meta[b"mmfeat.encoder_weights_sha256"].decode() == expected
    assert (meta[b"mmfeat.encoder_device"], meta[b"mmfeat.encoder_dtype"]) == (b"auto", b"float32")
    figures = read_run_stats(coco_run.dataset_dir)["encoders"]["efficientnet_lite0"]
    assert figures["batches_on_cpu"] > 0 and figures["inference_request_batch_size"]["count"] > 0  # no GPU in CI
