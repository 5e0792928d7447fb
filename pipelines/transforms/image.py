"""Image stages: clean (read once, check, decode once, fingerprint) and views (clean + augmented, boxes along).

Each declares the columns it adds. Boxes: annotations are taken to be in the stored pixels'
frame when the annotated size equals the stored size (COCO's own case: its annotators saw the
pixels without EXIF rotation), else in the upright frame; either way they are mapped into the
view through the same matrix as the pixels.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa

from mmfeat.extractors import boxes as geometry
from mmfeat.extractors.augment import AugmentConfig
from mmfeat.extractors.augment.image import render_view, sample_image_augment
from mmfeat.extractors.errors import Rejected
from mmfeat.extractors.image import DecodedImage, ImageCleanConfig, check_image, decode_image, encode_jpeg, perceptual_hash
from mmfeat.extractors.seeding import derive_seed
from mmfeat.pipelines.io import read_source_bytes
from mmfeat.pipelines.transforms.stage import Stage, WorkItem
from mmfeat.schemas.records import CaptionedImage, ImageObject
from mmfeat.schemas.tensors import image_tensor_type, matrix_type

CLEAN_IMAGE_FIELDS: tuple[pa.Field, ...] = (
    pa.field("image_format", pa.string()),
    pa.field("width", pa.int32()),  # full resolution, upright
    pa.field("height", pa.int32()),
    pa.field("orientation", pa.int8()),  # EXIF orientation that was applied (1 = none)
    pa.field("perceptual_hash", pa.uint64()),  # 64-bit DCT hash of the clean image (near-duplicate detection)
)

IMAGE_AUGMENT_TYPE = pa.struct(  # float64: a view re-rendered from its recorded parameters is bit-identical
    [
        pa.field("seed", pa.uint64()),
        pa.field("crop", pa.list_(pa.float64())),  # [x, y, w, h] as fractions of the full image (a variable list:
        # Parquet cannot read back null fixed-size lists inside a struct)
        pa.field("flip", pa.bool_()),
        pa.field("rotate_deg", pa.float64()),
        pa.field("brightness", pa.float64()),
        pa.field("contrast", pa.float64()),
        pa.field("saturation", pa.float64()),
        pa.field("hue", pa.float64()),
        pa.field("blur_sigma", pa.float64()),
    ]
)

OBJECT_FIELDS: tuple[pa.Field, ...] = (  # null when no instances file was read; lists aligned with ``boxes``
    pa.field("boxes", matrix_type(4)),  # (objects, 4) x, y, w, h in the view's pixels
    pa.field("box_annotation_ids", pa.list_(pa.int64())),
    pa.field("box_category_ids", pa.list_(pa.int32())),
    pa.field("box_categories", pa.list_(pa.string())),
    pa.field("box_iscrowd", pa.list_(pa.bool_())),
    pa.field("box_areas", pa.list_(pa.float32())),  # annotated area scaled into the view (not re-clipped)
    pa.field("boxes_dropped", pa.int32()),  # objects cropped out of the view or left degenerate
)


def image_view_fields(config: ImageCleanConfig) -> tuple[pa.Field, ...]:
    """Columns added by :class:`ImageViews` for this config."""
    fields = [pa.field("image", image_tensor_type(config.size, config.size)), pa.field("augment", IMAGE_AUGMENT_TYPE)]
    if config.jpeg_quality is not None:
        fields.append(pa.field("image_jpeg", pa.binary()))
    return (*fields, *OBJECT_FIELDS)


class CleanImage(Stage):
    """Read the file once, hash it, check the header, decode once (reduced if possible), fingerprint."""

    name = "clean_image"

    def __init__(self, config: ImageCleanConfig, *, decode_side: int) -> None:
        super().__init__()
        self.config = config
        self.decode_side = decode_side  # shorter side the views need; JPEGs decode no larger than necessary

    def load(self, record: CaptionedImage) -> tuple[dict[str, Any], DecodedImage]:
        """The columns this stage adds, and the decoded image (read ahead: a record's file alone)."""
        data = read_source_bytes(record.image_path, max_bytes=self.config.max_file_bytes)
        header = check_image(data, self.config)
        stored, upright = (header.width, header.height), header.oriented_size
        annotated = (record.width, record.height)
        if record.objects and None not in annotated and annotated not in (stored, upright):
            raise Rejected("size_mismatch", f"annotated {annotated[0]}x{annotated[1]}, file is {stored[0]}x{stored[1]}")
        decoded = decode_image(data, header, self.config, min_side_needed=self.decode_side)
        columns = {
            "content_sha256": hashlib.sha256(data).hexdigest(),
            "image_format": header.format,
            "width": upright[0],
            "height": upright[1],
            "orientation": header.orientation,
            "perceptual_hash": perceptual_hash(decoded.pixels),
        }
        return columns, decoded

    def output_fields(self, upstream: tuple[pa.Field, ...]) -> tuple[pa.Field, ...]:
        return CLEAN_IMAGE_FIELDS  # and content_sha256, one of every table's SAMPLE_FIELDS

    def apply(self, item: WorkItem) -> Iterator[WorkItem]:
        columns, decoded = self.loaded(item)
        item.columns.update(columns)
        item.arrays["decoded"] = decoded
        yield item


class ImageViews(Stage):
    """The clean view (0) and seeded augmented views of a decoded image, boxes transformed with the pixels."""

    name = "image_views"

    def __init__(self, config: ImageCleanConfig, augment: AugmentConfig) -> None:
        super().__init__()
        self.config = config
        self.augment = augment

    def output_fields(self, upstream: tuple[pa.Field, ...]) -> tuple[pa.Field, ...]:
        return image_view_fields(self.config)  # and view, one of every table's SAMPLE_FIELDS

    def row_bytes(self, record: Any) -> int:
        """The view's RGB tensor, and its JPEG copy (counted at a third of the pixels: quality 100 comes near)."""
        pixels = self.config.size * self.config.size * 3
        return pixels + (pixels // 3 if self.config.jpeg_quality is not None else 0)

    def apply(self, item: WorkItem) -> Iterator[WorkItem]:
        decoded: DecodedImage = item.arrays.pop("decoded")
        views = self.augment.view_indices()
        for view in views:
            params = seed = None
            if view > 0:
                seed = derive_seed(self.augment.seed, item.record.sample_id, view)
                params = sample_image_augment(np.random.default_rng(seed), self.augment.image, *decoded.size)
            rendered = render_view(decoded, self.config.size, params)
            out = item.evolve(view=view, num_views=len(views))
            out.arrays["image"] = rendered.pixels
            out.columns.update(
                view=view,
                image=rendered.pixels,
                augment={"seed": seed, **params.to_dict()} if params is not None else None,
                **self._objects(item.record, decoded, rendered.matrix),
            )
            if self.config.jpeg_quality is not None:
                out.columns["image_jpeg"] = encode_jpeg(rendered.pixels, self.config.jpeg_quality)
            yield out

    def _objects(self, record: object, decoded: DecodedImage, to_view: np.ndarray) -> dict[str, object]:
        objects: tuple[ImageObject, ...] | None = record.objects
        if objects is None:
            return {f.name: None for f in OBJECT_FIELDS}
        header = decoded.header
        annotated = (record.width, record.height)
        if None in annotated or annotated == (header.width, header.height):  # annotated on the stored pixels
            to_view = to_view @ geometry.orientation_matrix(header.orientation, header.width, header.height)
        size = self.config.size
        boxes, keep = geometry.transform_boxes(np.array([o.bbox for o in objects]).reshape(-1, 4), to_view, size, size)
        kept = [o for o, k in zip(objects, keep) if k]
        area_scale = abs(float(np.linalg.det(to_view[:2, :2])))
        return {
            "boxes": boxes,
            "box_annotation_ids": [o.annotation_id for o in kept],
            "box_category_ids": [o.category_id for o in kept],
            "box_categories": [o.category for o in kept],
            "box_iscrowd": [o.iscrowd for o in kept],
            "box_areas": [o.area * area_scale for o in kept],
            "boxes_dropped": len(objects) - len(kept),
        }


def image_stages(image: ImageCleanConfig, augment: AugmentConfig) -> list[Stage]:
    """What every image dataset runs first: clean (decoded no larger than its views need), then the views."""
    decode_side = augment.image.min_decode_side(image.size) if augment.views else image.size
    return [CleanImage(image, decode_side=decode_side), ImageViews(image, augment)]
