import numpy as np
import pytest
from skimage import data as skdata

from mmfeat.extractors import boxes as geometry
from mmfeat.extractors.augment.image import (
    CropConfig,
    ImageAugmentConfig,
    ImageAugmentParams,
    render_view,
    sample_image_augment,
)
from mmfeat.extractors.image import DecodedImage
from mmfeat.extractors.image_header import ImageHeader


def decoded(pixels: np.ndarray, scale: float = 1.0) -> DecodedImage:
    h, w = pixels.shape[:2]
    return DecodedImage(pixels, ImageHeader("png", round(w / scale), round(h / scale)), scale)


def marker_image(width: int = 200, height: int = 100, box=(20, 30, 40, 20)) -> np.ndarray:
    """Black image with one white rectangle at box (x, y, w, h)."""
    img = np.zeros((height, width, 3), np.uint8)
    x, y, w, h = box
    img[y : y + h, x : x + w] = 255
    return img


def white_extent(view: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(view[:, :, 0] > 127)
    return xs.min(), ys.min(), xs.max() + 1 - xs.min(), ys.max() + 1 - ys.min()


def test_clean_view_is_shorter_side_resize_and_centre_crop():
    img = marker_image()
    view = render_view(decoded(img), 100)
    assert view.pixels.shape == (100, 100, 3)
    assert np.array_equal(view.pixels, img[:, 50:150])  # 100 px tall already: a pure centre crop
    boxes, keep = geometry.transform_boxes(np.array([[10, 30, 30, 20], [60, 10, 30, 30]]), view.matrix, 100, 100)
    assert keep.tolist() == [False, True]  # the first box lies entirely in the cropped-away left part
    assert boxes.tolist() == [[10, 10, 30, 30]]


def test_flip_mirrors_pixels_and_box_coordinates():
    box = (120, 30, 40, 20)
    img = marker_image(box=box)
    plain = render_view(decoded(img), 100)
    flipped = render_view(decoded(img), 100, ImageAugmentParams(flip=True))
    assert np.array_equal(flipped.pixels, plain.pixels[:, ::-1])
    (moved,), _ = geometry.transform_boxes(np.array([box]), flipped.matrix, 100, 100)
    # centre crop starts at x=50: the box spans x 70..110 -> clipped 70..100, mirrored to 0..30
    assert moved.tolist() == [0.0, 30.0, 30.0, 20.0]
    assert white_extent(flipped.pixels) == (0, 30, 30, 20)


@pytest.mark.parametrize("params", [ImageAugmentParams(crop=(0.1, 0.2, 0.5, 0.6)), ImageAugmentParams(rotate_deg=90.0)])
def test_boxes_follow_the_pixels_through_crops_and_rotations(params):
    box = (80, 40, 40, 20)
    img = marker_image(box=box)
    view = render_view(decoded(img), 128, params)
    (moved,), keep = geometry.transform_boxes(np.array([box]), view.matrix, 128, 128)
    assert keep.all()
    assert np.allclose(moved, white_extent(view.pixels), atol=1.5)


def test_reduced_decode_scale_is_accounted_for_in_the_matrix():
    box = (80, 40, 40, 20)
    full = marker_image(box=box)
    half = full[::2, ::2]  # what a 1/2 reduced decode would give
    view = render_view(decoded(half, scale=0.5), 50)
    (moved,), _ = geometry.transform_boxes(np.array([box]), view.matrix, 50, 50)
    assert np.allclose(moved, white_extent(view.pixels), atol=1.0)


def test_degenerate_boxes_are_removed():
    out, keep = geometry.transform_boxes(np.array([[10, 10, 0, 5], [10, 10, 0.5, 5], [10, 10, 5, 5]]), np.eye(3), 100, 100)
    assert keep.tolist() == [False, False, True] and out.shape == (1, 4)


def test_sampling_is_deterministic_per_seed_and_records_what_fired():
    config = ImageAugmentConfig()
    draw = [sample_image_augment(np.random.default_rng(7), config, 640, 480) for _ in range(2)]
    assert draw[0] == draw[1]
    assert draw[0] != sample_image_augment(np.random.default_rng(8), config, 640, 480)
    x, y, w, h = draw[0].crop
    assert x >= 0 and x + w <= 1 + 1e-9 and y >= 0 and y + h <= 1 + 1e-9
    never = ImageAugmentConfig(crop=CropConfig(p=0.0))
    assert sample_image_augment(np.random.default_rng(7), never, 640, 480).crop is None


def test_augmented_view_is_deterministic_and_differs_from_the_clean_view():
    image = decoded(skdata.astronaut())
    params = sample_image_augment(np.random.default_rng(3), ImageAugmentConfig(), 512, 512)
    a, b = render_view(image, 64, params), render_view(image, 64, params)
    assert np.array_equal(a.pixels, b.pixels)
    assert not np.array_equal(a.pixels, render_view(image, 64).pixels)


def test_min_decode_side_grows_with_the_smallest_crop():
    assert ImageAugmentConfig(crop=CropConfig(scale=(0.25, 1.0))).min_decode_side(224) == 448
    assert ImageAugmentConfig(crop=CropConfig(p=0.0)).min_decode_side(224) == 224


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_matrix_follows_the_exif_rotation(orientation):
    from mmfeat.extractors.image import apply_orientation

    box = (30, 10, 40, 20)
    stored = marker_image(120, 80, box)
    upright = apply_orientation(stored, orientation)
    (moved,), _ = geometry.transform_boxes(np.array([box]), geometry.orientation_matrix(orientation, 120, 80), 1e9, 1e9)
    assert tuple(moved) == white_extent(upright)
