"""The IEMOCAP-style pipeline as a user runs it, with the Parquet read back."""

import numpy as np
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from mmfeat.extractors.audio import clean_samples, read_audio_span
from mmfeat.extractors.spectral import frame_geometry, mfcc_features
from mmfeat.extractors.video import VideoSource
from mmfeat.runners.config import load_config
from mmfeat.schemas.manifest import read_manifest
from mmfeat.schemas.rejects import store_rejects
from mmfeat.schemas.tensors import arrow_to_matrices, arrow_to_tensors, unpack_byte_tensors
from tests.conftest import declared_schema

pytestmark = pytest.mark.slow

EXPECTED_REJECTS = {
    "video_has_no_audio": 1,
    "label_dropped": 1,
    "label_missing": 1,
    "segment_out_of_range": 1,
    "transcript_malformed_line": 1,
    "transcript_missing": 1,
    "video_unreadable": 2,
}


def read_rows(dataset_dir):
    paths = [dataset_dir / s["path"] for s in read_manifest(dataset_dir)["shards"]]
    return unpack_byte_tensors(ds.dataset(paths, format="parquet").to_table()).sort_by([("sample_id", "ascending")])


def test_counts_balance_and_every_broken_case_has_its_reason(iemocap_run):
    counts = read_manifest(iemocap_run.dataset_dir)["counts"]
    assert counts["input"] == counts["written"] + counts["rejected"] == 16
    assert counts["rejected_by_reason"] == EXPECTED_REJECTS
    rejects = store_rejects(iemocap_run.dataset_dir, read_manifest(iemocap_run.dataset_dir)["rejects"]).to_pylist()
    assert len(rejects) == 8 and all(r["detail"] for r in rejects)


def test_rows_labels_and_session_splits(iemocap_run, iemocap_root):
    table = read_rows(iemocap_run.dataset_dir)
    assert table.schema.equals(declared_schema("iemocap", iemocap_root), check_metadata=False)
    rows = table.to_pylist()
    assert {(r["split"], r["session"]) for r in rows} == {("train", 1), ("test", 5)}
    train_speakers = {r["speaker"] for r in rows if r["split"] == "train"}
    assert train_speakers.isdisjoint({r["speaker"] for r in rows if r["split"] == "test"})
    merged = next(r for r in rows if r["sample_id"] == "Ses01F_impro01_M000")
    assert (merged["label"], merged["raw_label"], merged["valence"]) == ("hap", "exc", 3.5)
    assert merged["tokens"] == ["do", "you", "have", "your", "forms", "?"]
    assert arrow_to_tensors(table["frames"]).shape == (8, 8, 112, 112, 3)
    has_audio = {r["dialog"]: r["video_has_audio"] for r in rows}
    assert has_audio == {"Ses01F_impro01": True, "Ses01M_script01_1": False, "Ses05F_impro02": True}


def test_frames_mfcc_and_alignment_match_the_extractors_on_the_same_span(iemocap_run, iemocap_root):
    from mmfeat.extractors.threads import single_threaded_math

    single_threaded_math()  # as the pipeline's stages do: the same bits
    config = load_config("iemocap")
    table = read_rows(iemocap_run.dataset_dir)
    hop_s = frame_geometry(config.mfcc, config.audio.sample_rate).hop_length / config.audio.sample_rate
    frames_all = arrow_to_tensors(table["frames"])
    mfcc_all = arrow_to_matrices(table["mfcc"])
    for i, row in enumerate(table.to_pylist()):
        wav = iemocap_root / f"Session{row['session']}" / "dialog" / "wav" / f"{row['dialog']}.wav"
        clean = clean_samples(read_audio_span(str(wav), row["start_s"], row["end_s"]), config.audio.__class__(trim_top_db=None))
        assert np.array_equal(mfcc_all[i], mfcc_features(clean.waveform, 16000, config.mfcc)["mfcc"])
        offsets = np.array(row["frame_timestamps_s"]) - row["start_s"]
        expected = np.clip(np.rint(offsets / hop_s), 0, row["mfcc_frames"] - 1).astype(int)
        assert row["frame_mfcc_index"] == expected.tolist()
        assert all(t < row["end_s"] for t in row["frame_timestamps_s"])
        source = VideoSource(iemocap_root / row["source_path"])
        frames, stamps = source.frames(row["start_s"], row["end_s"], config.video)
        source.close()
        assert np.array_equal(frames, frames_all[i]) and np.allclose(stamps, row["frame_timestamps_s"])


def test_a_dialogs_utterances_decode_on_without_a_seek_each(iemocap_run):
    """Utterances of a dialog in order, close together: one video decode runs on through them (the frames equal a
    fresh seek's: the test above); ``_run_stats.json`` counts the seeks."""
    from mmfeat.pipelines.run_stats import read_run_stats

    frames = read_run_stats(iemocap_run.dataset_dir)["stages"]["extract_frames"]
    assert 0 < frames["seeks"] < frames["out"]


def test_the_reader_returns_label_ids_in_rows_and_batches(iemocap_run):
    """``label_ids``: the manifest's map (every split's labels, sorted), as int32 ids beside the labels."""
    from mmfeat.schemas.reader import FeatureDataset

    maps = read_manifest(iemocap_run.dataset_dir)["statistics"]["label_ids"]
    assert set(maps) == {"label", "speaker"} and maps["label"] == {k: i for i, k in enumerate(sorted(maps["label"]))}
    data = FeatureDataset(iemocap_run.dataset_dir, columns=["sample_id", "label"], label_ids=["label", "speaker"])
    rows = list(data.partition(0, 1))
    assert rows and all(r["label_id"] == maps["label"][r["label"]] for r in rows)
    assert all(0 <= r["speaker_id"] < len(maps["speaker"]) and "speaker" not in r for r in rows)
    batches = FeatureDataset(iemocap_run.dataset_dir, columns=["label"], label_ids=["label"], batch_size=4)
    batch = next(iter(batches.partition(0, 1)))
    assert not batch["label_id"].dtype.is_floating_point
    assert batch["label_id"].tolist() == [maps["label"][label] for label in batch["label"]]


def test_the_video_gap_is_respected(iemocap_run):
    row = next(r for r in read_rows(iemocap_run.dataset_dir).to_pylist() if r["sample_id"] == "Ses05F_impro02_M000")
    stamps = np.array(row["frame_timestamps_s"])
    assert np.diff(stamps).max() > 0.6  # Session5's video has no frame between ~4.13 s and ~4.87 s: the frame on screen repeats
    assert (np.diff(stamps) >= 0).all()


def test_shards_do_not_depend_on_workers(iemocap_run, iemocap_multiprocess_run):
    def files(run):
        return {p.relative_to(run.dataset_dir).as_posix(): p.read_bytes() for p in sorted(run.dataset_dir.rglob("*.parquet"))}

    assert files(iemocap_run) == files(iemocap_multiprocess_run)


def test_dialogs_pack_into_shards_capped_by_rows_and_bytes_the_same_on_dask(iemocap_root, tmp_path):
    """fps frames at 224 px are about 640 KB a row here: a 2 MiB shard holds 3 of them, a 1 MiB row group one."""
    pytest.importorskip("distributed")
    from tests.conftest import run_dataset

    cap = 2 * 2**20
    small = ("--set", "output.rows_per_shard=4", "--set", f"output.max_shard_bytes={cap}")
    small += ("--set", "output.row_group_bytes=1048576", "--set", "video.mode=fps", "--set", "video.size=224")
    direct = run_dataset("iemocap", iemocap_root, tmp_path / "direct", *small)
    dask = run_dataset("iemocap", iemocap_root, tmp_path / "dask", "--runner=dask", *small)
    rows = read_rows(direct.dataset_dir)
    shards = read_manifest(direct.dataset_dir)["shards"]
    assert len(shards) > 1 and max(shard["rows"] for shard in shards) > 1
    row_bytes = {}
    for shard in shards:
        parquet = pq.ParquetFile(direct.dataset_dir / shard["path"])
        table = parquet.read()  # images and frames as stored: their raw bytes
        row_bytes.update((sid, table.slice(i, 1).nbytes) for i, sid in enumerate(table["sample_id"].to_pylist()))
        assert table.num_rows <= 4 and (table.nbytes <= cap or table.num_rows == 1), (shard, table.nbytes)
        sizes = [parquet.metadata.row_group(i).num_rows for i in range(parquet.metadata.num_row_groups)]
        assert sizes == [1] * table.num_rows  # a row group of 1 MiB holds one of these rows
    dialog_shards, dialog_bytes = {}, {}
    for shard in shards:
        table = ds.dataset(direct.dataset_dir / shard["path"]).to_table(columns=["dialog", "sample_id"])
        for dialog, sid in zip(table["dialog"].to_pylist(), table["sample_id"].to_pylist()):
            dialog_shards.setdefault(dialog, set()).add(shard["path"])
            dialog_bytes[dialog] = dialog_bytes.get(dialog, 0) + row_bytes[sid]
    fits = {d for d in dialog_shards if rows.filter(ds.field("dialog") == d).num_rows <= 4 and dialog_bytes[d] <= cap // 2}
    assert all(len(dialog_shards[d]) == 1 for d in fits)  # a dialog well within both bounds: one shard

    def files(run):
        return {p.relative_to(run.dataset_dir).as_posix(): p.read_bytes() for p in sorted(run.dataset_dir.rglob("*.parquet"))}

    assert files(dask) == files(direct)


def test_a_generic_manifest_runs_the_same_pipeline_with_audio_from_the_video(iemocap_root, tmp_path):
    from tests.conftest import run_dataset

    dialog = iemocap_root / "Session1" / "dialog"
    video, wav = dialog / "avi" / "DivX" / "Ses01F_impro01.avi", dialog / "wav" / "Ses01F_impro01.wav"
    manifest = tmp_path / "clips.csv"
    manifest.write_text(
        "utterance_id,video,audio,start,end,text,label,split\n"
        f"a,{video},{wav},0.4,2.1,Excuse me.,neu,train\n"
        f"b,{video},,2.5,4.6,Do you have your forms?,exc,train\n"
        f"c,{dialog / 'avi' / 'DivX' / 'Ses01M_script01_1.avi'},,0.3,2.4,No audio track here.,sad,train\n"
    )
    run = run_dataset("iemocap", manifest, tmp_path / "out")
    counts = read_manifest(run.dataset_dir)["counts"]
    assert (counts["written"], counts["rejected_by_reason"]) == (2, {"video_has_no_audio": 1})
    rows = {r["sample_id"]: r for r in read_rows(run.dataset_dir).to_pylist()}
    assert rows["b"]["label"] == "hap" and abs(rows["b"]["duration_s"] - 2.1) < 0.01  # cut from the .avi's MP3 track
    assert rows["a"]["source_sample_rate"] == 16000 and rows["b"]["mfcc_frames"] == 211


def test_frame_and_text_embeddings_and_the_fusion_vector(iemocap_fusion_run):
    table = read_rows(iemocap_fusion_run.dataset_dir)
    assert arrow_to_tensors(table["frames"]).shape[1:] == (8, 224, 224, 3)
    frames = arrow_to_matrices(table["frame_embeddings"])
    mfcc = arrow_to_matrices(table["mfcc"])
    text = np.stack(table["text_embedding"].to_numpy(zero_copy_only=False))
    fusion = np.stack(table["fusion"].to_numpy(zero_copy_only=False))
    assert frames[0].shape == (8, 1280) and text.shape == (8, 384) and fusion.shape == (8, 1280 + 40 + 384)
    for i in range(len(fusion)):
        expected = np.concatenate([frames[i].mean(axis=0), mfcc[i].mean(axis=0), text[i]])
        np.testing.assert_allclose(fusion[i], expected, rtol=1e-6, atol=1e-6)


def test_augmented_views_jitter_times_and_reproduce_from_their_recorded_parameters(iemocap_root, tmp_path):
    from mmfeat.extractors.augment.image import ImageAugmentParams
    from mmfeat.extractors.augment.video import jittered_times, render_clip
    from tests.conftest import run_dataset

    run = run_dataset("iemocap", iemocap_root, tmp_path, "--set", "augment.views=2", "--set", "iemocap.sessions=[1]")
    config = load_config("iemocap", overrides=["augment.views=2"])
    table = read_rows(run.dataset_dir)
    rows = table.to_pylist()
    assert table.num_rows == 3 * read_manifest(run.dataset_dir)["counts"]["written"]
    frames_all = arrow_to_tensors(table["frames"])
    hop_s = frame_geometry(config.mfcc, config.audio.sample_rate).hop_length / config.audio.sample_rate
    checked = 0
    for row, frames in zip(rows, frames_all):
        offsets = np.array(row["frame_timestamps_s"]) - row["start_s"]
        assert row["frame_mfcc_index"] == np.clip(np.rint(offsets / hop_s), 0, row["mfcc_frames"] - 1).astype(int).tolist()
        if row["view"] == 0:
            assert row["video_augment"] is None and row["augment"] is None
            continue
        assert row["augment"]["speed"] is None and row["augment"]["shift_s"] is None  # time-preserving audio only
        recorded = row["video_augment"]
        source = VideoSource(iemocap_root / row["source_path"])
        times = source.segment_times(row["start_s"], row["end_s"], config.video)
        raw, stamps = source.read(jittered_times(times, tuple(recorded["time_shifts_s"]), row["start_s"], row["end_s"]))
        source.close()
        x, y, side, _ = row["crop_box"]
        raw = [frame[y : y + side, x : x + side] for frame in raw]  # the augmentation applies to the clip's square
        spatial = {k: v for k, v in recorded.items() if k not in ("seed", "time_shifts_s")}
        params = ImageAugmentParams(**{**spatial, "crop": tuple(spatial["crop"]) if spatial["crop"] else None})
        assert np.allclose(stamps, row["frame_timestamps_s"])
        assert np.array_equal(render_clip(raw, config.video.size, params), frames), row["sample_id"]
        checked += 1
    assert checked == 2 * 5


def test_fps_mode_gives_clips_as_long_as_their_utterance_and_the_face_crop_finds_the_face(iemocap_root, tmp_path):
    from mmfeat.extractors.faces import FaceDetector
    from mmfeat.extractors.video import fit_square, fps_times
    from mmfeat.schemas.tensors import arrow_to_clips
    from tests.conftest import run_dataset

    pytest.importorskip("cv2").CascadeClassifier  # noqa: B018 (OpenCV 4's cascade detector)
    settings = ["video.mode=fps", "video.fps=2", "video.crop=face", "iemocap.frame_embeddings=true", "iemocap.sessions=[1]"]
    run = run_dataset("iemocap", iemocap_root, tmp_path, *[a for s in settings for a in ("--set", s)])
    counts = read_manifest(run.dataset_dir)["counts"]
    assert counts["input"] == counts["written"] + counts["rejected"] and counts["written"] == 5
    table = read_rows(run.dataset_dir)
    assert table.schema.equals(declared_schema("iemocap", iemocap_root, *settings), check_metadata=False)
    clips, embeddings = arrow_to_clips(table["frames"]), arrow_to_matrices(table["frame_embeddings"])
    lengths = set()
    for row, clip, embedding in zip(table.to_pylist(), clips, embeddings):
        source = VideoSource(iemocap_root / row["source_path"])
        times = fps_times(row["start_s"], min(row["end_s"], source.duration_s), 2.0, 32)
        raw, stamps = source.read(times)
        source.close()
        assert len(clip) == len(times) == len(row["frame_timestamps_s"]) == len(row["frame_mfcc_index"]) == len(embedding)
        assert np.allclose(stamps, row["frame_timestamps_s"]) and embedding.shape[1] == 1280
        x, y, side, _ = row["crop_box"]
        expected = FaceDetector().clip_box(raw)
        assert (row["crop_source"], row["crop_box"]) == (expected.source, expected.as_list())
        assert np.array_equal(clip, np.stack([fit_square(f[y : y + side, x : x + side], 112) for f in raw]))
        lengths.add(len(clip))
    sources = dict(zip(table["sample_id"].to_pylist(), table["crop_source"].to_pylist()))
    assert sources["Ses01F_impro01_F000"] == "face"  # the astronaut photo
    assert sources["Ses01M_script01_1_M000"] == "centre"  # the cat: no face, the centre square
    assert len(lengths) > 1  # utterances of different lengths get different frame counts
