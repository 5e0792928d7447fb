"""Audio whose header promises more than the file holds is a reject; a complete file without a length is read whole."""

import io
import os

import numpy as np
import soundfile

from mmfeat.extractors.audio import decode_audio, read_audio_span
from mmfeat.extractors.errors import Rejected


def encoded(fmt: str, seconds: float = 3.0, rate: int = 16000) -> tuple[bytes, np.ndarray]:
    wave = (0.1 * np.random.default_rng(0).standard_normal(int(seconds * rate))).astype(np.float32)
    buffer = io.BytesIO()
    soundfile.write(buffer, wave, rate, format=fmt, subtype="PCM_16")
    return buffer.getvalue(), wave


def reason(data: bytes) -> str:
    try:
        decode_audio(data)
    except Rejected as err:
        return err.reason
    return "decoded"


def test_half_a_wav_whose_header_gives_the_full_size_is_truncated(tmp_path):
    wav, _ = encoded("WAV")
    half = wav[: len(wav) // 2]
    assert reason(wav) == "decoded" and reason(half) == "audio_truncated"
    (tmp_path / "half.wav").write_bytes(half)
    try:
        read_audio_span(str(tmp_path / "half.wav"), 0.1, 0.5)
    except Rejected as err:
        assert err.reason == "audio_truncated"
    else:
        raise AssertionError("a cut wav was read as good")


def test_a_flac_cut_short_or_with_rotten_bytes_is_rejected():
    flac, _ = encoded("FLAC")
    assert reason(flac[: len(flac) // 2]) in ("audio_truncated", "audio_undecodable")
    rotten = bytearray(flac)
    for i in range(len(flac) // 3, len(flac) // 3 + 16):
        rotten[i] ^= 0x5A
    assert reason(bytes(rotten)) in ("audio_truncated", "audio_undecodable")


def test_a_streaming_flac_without_a_total_in_streaminfo_is_read_whole(tmp_path):
    flac, wave = encoded("FLAC")
    streamed = bytearray(flac)
    # STREAMINFO starts at byte 8; its 36-bit total of samples is the low 4 bits of byte 21 and bytes 22..25
    streamed[21] &= 0xF0
    streamed[22:26] = b"\x00\x00\x00\x00"
    streamed[26:42] = bytes(16)  # no MD5 either, as streaming encoders leave it
    decoded = decode_audio(bytes(streamed))
    assert decoded.samples.shape == (len(wave), 1)
    assert np.abs(decoded.samples[:, 0] - wave).max() < 1e-4
    (tmp_path / "s.flac").write_bytes(bytes(streamed))
    span = read_audio_span(str(tmp_path / "s.flac"), 1.0, None)
    assert span.samples.shape[0] == len(wave) - 16000


def test_audio_far_longer_than_max_duration_is_rejected_from_its_header():
    from mmfeat.extractors.audio import AudioCleanConfig, clean_audio

    config = AudioCleanConfig(max_duration_s=20.0)  # sources over max(40, 80) s are not decoded
    long_wav, _ = encoded("WAV", seconds=81.0, rate=8000)
    try:
        clean_audio(long_wav, config)
    except Rejected as err:
        assert err.reason == "audio_too_long" and "not decoded" in err.detail
    else:
        raise AssertionError("an 81 s file passed max_duration_s=20")
    short_enough, _ = encoded("WAV", seconds=79.0, rate=8000)  # decoded, then too long after cleaning as before
    try:
        clean_audio(short_enough, config)
    except Rejected as err:
        assert err.reason == "audio_too_long" and "not decoded" not in err.detail


def test_the_block_by_block_helpers_equal_what_they_replace_bit_for_bit():
    """Long audio is cleaned without whole-waveform float64 or framed copies, with the same bits as before."""
    import librosa

    from mmfeat.extractors.audio import frame_rms, remove_dc, sum_of_squares

    rng = np.random.default_rng(0)
    for size in (1, 7, 511, 70_000, 1_000_001, 3_000_017):
        wave = (0.1 * rng.standard_normal(size) + 0.01).astype(np.float32)
        assert sum_of_squares(wave) == np.sum(np.square(wave, dtype=np.float64))
        assert np.array_equal(frame_rms(wave, frame_length=2048, hop_length=512), librosa.feature.rms(y=wave)[0])
        assert np.array_equal(remove_dc(wave), (wave - wave.mean(dtype=np.float64)).astype(np.float32))


def test_huge_or_sparse_files_are_rejected_without_being_read(tmp_path):
    """A 10 GB sparse file (no disk used) would have been read whole into memory."""
    from mmfeat.extractors.audio import AudioCleanConfig, max_audio_bytes
    from mmfeat.extractors.image import ImageCleanConfig
    from mmfeat.pipelines.io import read_source_bytes

    wav, _ = encoded("WAV", seconds=1.0)
    padded = tmp_path / "padded.wav"
    padded.write_bytes(wav)
    os.truncate(padded, 10 * 2**30)  # a short WAV header, then 10 GB of holes
    zeros = tmp_path / "zeros.flac"
    zeros.touch()
    os.truncate(zeros, 10 * 2**30)
    photo = tmp_path / "photo.jpg"
    photo.touch()
    os.truncate(photo, 10 * 2**30)
    config = AudioCleanConfig()
    outcomes = []
    for path, limit in ((padded, lambda p: max_audio_bytes(str(p), config)), (zeros, lambda p: max_audio_bytes(str(p), config)),
                        (photo, lambda p: ImageCleanConfig().max_file_bytes)):  # fmt: skip
        try:
            read_source_bytes(str(path), max_bytes=limit(path))
        except Rejected as err:
            outcomes.append(err.reason)
    assert outcomes == ["file_too_large", "audio_undecodable", "file_too_large"]
