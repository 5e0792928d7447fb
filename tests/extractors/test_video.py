import re

import numpy as np
import pytest

from mmfeat.extractors.errors import Rejected
from mmfeat.extractors.video import (
    FramesConfig,
    VideoSource,
    frames_at,
    sample_times,
)

av = pytest.importorskip("av")


def test_frames_are_chosen_by_timestamp_not_by_index():
    # 10 fps with a 1 s hole after frame 4: frame 5 starts at 1.5 s, not 0.5 s.
    starts = np.array([0.0, 0.1, 0.2, 0.3, 0.4, 1.5, 1.6, 1.7])
    timestamps = np.stack([starts, starts + 0.1], axis=1)
    assert frames_at(timestamps, np.array([0.05, 0.45, 0.9, 1.49, 1.5, 1.65, 9.0])).tolist() == [0, 4, 4, 4, 5, 6, 7]
    assert np.allclose(sample_times(1.0, 2.0, 4), [1.125, 1.375, 1.625, 1.875])


@pytest.fixture(scope="module")
def gapped_video(tmp_path_factory):
    """15 fps, 40 frames, each a flat grey level = 5 * index; frames after index 19 are stamped 10 periods late."""
    from mmfeat.pipelines.datasets.iemocap.sample import write_avi

    path = tmp_path_factory.mktemp("video") / "gap.avi"
    frames = [np.full((120, 160, 3), 5 * i, np.uint8) for i in range(40)]
    write_avi(path, frames, None, gap_after=19)
    return path


def test_a_video_with_a_timestamp_gap_gives_the_frames_on_screen(gapped_video):
    source = VideoSource(gapped_video)
    try:
        assert np.isclose(source.duration_s, 50 / 15)  # 40 frames, the last 19 of them 10 frame periods late
        frames, times = source.frames(1.2, 2.2, FramesConfig(num_frames=4, size=32))
        levels = frames.reshape(4, -1).mean(axis=1) / 5
        # sample times 1.325, 1.575, 1.825, 2.075 s: frame 19 (the last before the gap) three times, then frame 21
        # (frame 20 shows from 2.0 s, frame 21 from 2.067 s); index x fps would have given frames 19, 23, 27, 31
        assert np.round(levels).tolist() == [19, 19, 19, 21]
        assert np.allclose(times, [19 / 15, 19 / 15, 19 / 15, 31 / 15])
        assert frames.shape == (4, 32, 32, 3) and frames.dtype == np.uint8
    finally:
        source.close()


def test_segments_outside_the_video_and_unreadable_files_are_rejected(gapped_video, tmp_path):
    source = VideoSource(gapped_video)
    with pytest.raises(Rejected) as err:
        source.frames(2.0, 9.0, FramesConfig())
    assert err.value.reason == "segment_out_of_range"
    source.close()
    broken = tmp_path / "broken.avi"
    broken.write_bytes(b"RIFF\x00\x00\x00\x00AVI " + bytes(64))
    with pytest.raises(Rejected) as err:
        VideoSource(broken)
    assert err.value.reason == "video_unreadable" and str(tmp_path) not in err.value.detail


def test_the_audio_stream_of_a_video_is_seen_and_decoded(gapped_video, tmp_path):
    from mmfeat.extractors.video import VideoAudioTrack
    from mmfeat.pipelines.datasets.iemocap.sample import write_avi

    with_audio = tmp_path / "a.avi"
    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)).astype(np.float32)
    write_avi(with_audio, [np.zeros((120, 160, 3), np.uint8)] * 15, tone)
    sources = [VideoSource(with_audio), VideoSource(gapped_video)]
    assert [s.has_audio for s in sources] == [True, False]
    for source in sources:
        source.close()
    track = VideoAudioTrack(with_audio, sample_rate=16000)
    assert track.samples.shape[1] == 1 and abs(len(track.samples) - 16000) < 2000  # MP3 frames pad the end
    span = track.span(0.25, 0.75)
    assert span.samples.shape == (8000, 1) and 0.15 < float(np.sqrt(np.mean(span.samples**2))) < 0.25
    with pytest.raises(Rejected) as err:
        VideoAudioTrack(gapped_video, sample_rate=16000)
    assert err.value.reason == "video_has_no_audio"


def test_fps_mode_follows_the_segment_length():
    from mmfeat.extractors.video import fps_times

    assert np.allclose(fps_times(1.0, 3.0, 2.0, 32), sample_times(1.0, 3.0, 4))  # whole slots: the uniform centres
    assert np.allclose(fps_times(0.0, 1.3, 2.0, 32), [0.25, 0.75])  # the partial last slot is not sampled
    assert np.allclose(fps_times(2.0, 2.2, 2.0, 32), [2.1])  # shorter than one slot: its centre
    assert np.allclose(fps_times(0.0, 20.0, 2.0, 8), sample_times(0.0, 20.0, 8))  # capped at max_frames, evenly spread
    config = FramesConfig(mode="fps", fps=4.0)
    assert config.fixed_count is None and len(config.times(0.0, 2.5)) == 10
    assert FramesConfig().fixed_count == 8 and np.allclose(FramesConfig().times(0.0, 8.0), np.arange(8) + 0.5)


@pytest.mark.parametrize(
    "bad", [{"mode": "random"}, {"fps": 0.0}, {"max_frames": 0}, {"crop": "left"}, {"face_margin": 0.5}, {"size": 4}]
)
def test_invalid_frame_settings_name_their_key(bad):
    with pytest.raises(ValueError, match="video."):
        FramesConfig(**bad)


def test_a_video_with_a_wiped_header_is_rejected_without_clock_or_path(tmp_path):
    from mmfeat.pipelines.datasets.iemocap.sample import write_avi

    path = tmp_path / "wiped.avi"
    write_avi(path, [np.full((120, 160, 3), v, np.uint8) for v in range(0, 250, 5)], None)
    data = bytearray(path.read_bytes())
    data[:4096] = bytes(4096)
    path.write_bytes(bytes(data))
    with pytest.raises(Rejected) as err:
        VideoSource(path)
    assert err.value.reason == "video_unreadable"
    assert str(tmp_path) not in err.value.detail and not re.search(r"\d\d:\d\d:\d\d", err.value.detail)


def write_numbered_video(path, *, codec="mpeg4", b_frames=2, frames=100, fps=25):
    """Frames that show their own index: top half (index % 10) x 25, bottom half (index // 10) x 20 (grey)."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt, stream.bit_rate = 160, 128, "yuv420p", 4_000_000
        stream.codec_context.gop_size, stream.codec_context.max_b_frames = 25, b_frames
        for index in range(frames):
            image = np.zeros((128, 160, 3), np.uint8)
            image[:64], image[64:] = (index % 10) * 25, (index // 10) * 20
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode(None))


def shown_index(frame):
    return int(round(frame[72:120].mean() / 20)) * 10 + int(round(frame[8:56].mean() / 25))


@pytest.mark.parametrize("name", ["b_frames.avi", "b_frames.mp4", "no_b_frames.avi"])
def test_frames_follow_display_order_with_b_frames(tmp_path, name):
    """An AVI stores B-frames out of display order; decord read frame 37 as frame 0 and stamped it -3.7e17 s."""
    path = tmp_path / name
    write_numbered_video(path, codec="libx264" if name.endswith(".mp4") else "mpeg4", b_frames=0 if "no_b" in name else 2)
    source = VideoSource(path)
    try:
        assert np.isclose(source.duration_s, 4.0)
        wanted = np.array([0.0, 0.41, 1.49, 2.0, 2.05, 3.99])  # frames 0, 10, 37, 50, 51, 99 (25 fps)
        raw, times = source.read(wanted)
        assert [shown_index(f) for f in raw] == [0, 10, 37, 50, 51, 99]
        assert np.allclose(times, [0.0, 0.4, 1.48, 2.0, 2.04, 3.96])
        again, _ = source.read(np.array([1.49]))  # a second read seeks back
        assert shown_index(again[0]) == 37
    finally:
        source.close()


def test_a_broken_container_duration_falls_back_to_the_packets(tmp_path):
    """The AVI header claims 2^32 - 1 frames (170 million seconds) and has no index: the duration comes from the
    packets, and the frames are still found by time (every utterance was segment_out_of_range before)."""
    path = tmp_path / "broken_duration.avi"
    write_numbered_video(path)
    data = bytearray(path.read_bytes())
    stream_header = data.find(b"strh")
    data[stream_header + 40 : stream_header + 44] = b"\xff\xff\xff\xff"  # dwLength
    data[data.find(b"idx1") : data.find(b"idx1") + 4] = b"JUNK"
    path.write_bytes(bytes(data))
    source = VideoSource(path)
    try:
        assert np.isclose(source.duration_s, 4.0)
        raw, _ = source.read(np.array([2.0, 3.0]))
        assert [shown_index(f) for f in raw] == [50, 75]
    finally:
        source.close()


@pytest.mark.parametrize("name", ["b_frames.avi", "b_frames.mp4"])
def test_segments_in_order_are_decoded_once_with_the_frames_a_seek_gives(tmp_path, name):
    """Dense segments in order decode on from the last read (one seek for all of them); every segment gets the
    frames and times that a fresh source, seeking to it, gives. A segment behind the last read seeks again."""
    path = tmp_path / name
    write_numbered_video(path, codec="libx264" if name.endswith(".mp4") else "mpeg4", frames=125, fps=12)  # 10.4 s
    segments = [(0.1, 0.9), (1.0, 1.9), (1.94, 2.5), (2.5, 2.52), (2.9, 5.1), (5.2, 6.9), (6.95, 7.3), (7.5, 8.0)]
    config = FramesConfig(num_frames=6, size=32)
    source = VideoSource(path)
    try:
        in_order = [source.read(source.segment_times(*segments[0], config))]
        seeks = source.seeks
        in_order += [source.read(source.segment_times(start, end, config)) for start, end in segments[1:]]
        assert source.seeks == seeks  # gaps under half a second: decoded on
        segments += [(1.0, 1.9), (9.5, 9.99)]
        in_order.append(source.read(source.segment_times(1.0, 1.9, config)))  # behind the decode: a seek
        assert source.seeks > seeks
        seeks = source.seeks
        in_order.append(source.read(source.segment_times(9.5, 9.99, config)))  # far ahead: a seek too
        assert source.seeks > seeks
    finally:
        source.close()
    for (start, end), (raw, times) in zip(segments, in_order, strict=True):
        fresh = VideoSource(path)
        try:
            expected_raw, expected_times = fresh.read(fresh.segment_times(start, end, config))
        finally:
            fresh.close()
        assert np.array_equal(times, expected_times), (start, end)
        assert [shown_index(f) for f in raw] == [shown_index(f) for f in expected_raw]
        assert all(np.array_equal(a, b) for a, b in zip(raw, expected_raw)), (start, end)


def test_a_decode_error_while_decoding_on_falls_back_to_a_seek(tmp_path):
    """Damage in the gap between two utterances must not reject the second one: the read seeks instead."""
    path = tmp_path / "b_frames.avi"
    write_numbered_video(path, frames=125, fps=12)
    config = FramesConfig(num_frames=6, size=32)
    source = VideoSource(path)
    try:
        source.read(source.segment_times(0.1, 0.9, config))
        seeks = source.seeks

        def damaged():
            raise av.error.InvalidDataError(1094995529, "Invalid data found when processing input")
            yield  # a generator, like PyAV's decode

        source._decoder = damaged()  # the running decode meets damaged data
        raw, times = source.read(source.segment_times(1.0, 1.9, config))
        assert source.seeks > seeks
    finally:
        source.close()
    fresh = VideoSource(path)
    try:
        expected_raw, expected_times = fresh.read(fresh.segment_times(1.0, 1.9, config))
    finally:
        fresh.close()
    assert np.array_equal(times, expected_times) and [shown_index(f) for f in raw] == [shown_index(f) for f in expected_raw]
