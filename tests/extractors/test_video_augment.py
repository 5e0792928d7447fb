import numpy as np

from mmfeat.extractors.augment.image import ImageAugmentParams
from mmfeat.extractors.augment.video import VideoAugmentConfig, jittered_times, render_clip, sample_time_shifts
from mmfeat.extractors.video import fit_square, sample_times


def test_time_shifts_are_seeded_and_stay_within_half_the_jitter_of_the_spacing():
    times = sample_times(1.0, 3.0, 8)  # spacing 0.25 s
    config = VideoAugmentConfig(jitter=0.5)
    shifts = sample_time_shifts(np.random.default_rng(4), config, times)
    assert shifts == sample_time_shifts(np.random.default_rng(4), config, times)
    assert max(abs(s) for s in shifts) <= 0.25 * 0.25 + 1e-12
    moved = jittered_times(times, shifts, 1.0, 3.0)
    assert (np.diff(moved) >= 0).all() and moved.min() >= 1.0 and moved.max() < 3.0
    assert sample_time_shifts(np.random.default_rng(4), VideoAugmentConfig(jitter=0.0), times) == (0.0,) * 8


def test_one_spatial_augmentation_for_every_frame_of_a_clip():
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)
    clip = render_clip([frame, frame.copy(), frame.copy()], 32, ImageAugmentParams(flip=True, crop=(0.1, 0.1, 0.5, 0.6)))
    assert clip.shape == (3, 32, 32, 3) and (clip == clip[0]).all()  # same input, same parameters, same output
    plain = render_clip([frame], 32, None)[0]
    assert np.array_equal(plain, fit_square(frame, 32))  # the clean view is the centre square
