"""COCO reader for the real 2017 layout.

    COCO_ROOT/annotations/captions_<split>.json     (required per split: images + caption annotations)
    COCO_ROOT/annotations/instances_<split>.json    (optional: boxes, categories, iscrowd, area)
    COCO_ROOT/<split>/<file_name>                   (e.g. train2017/000000000009.jpg)

``discover`` streams the annotation files (they are never loaded whole) and lists one
:class:`CaptionedImage` per image with all its captions and objects, plus a :class:`Reject` for
each entry that cannot become one (malformed entry, repeated image id, annotation of an unknown
image). ``parse_unit`` checks each image's file (inside the image folder, present) in the
pipeline. Nothing is decoded here. A file that is not valid JSON stops the run before it starts.
"""

from __future__ import annotations

import math
import os
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from mmfeat.pipelines.sources.base import LayoutError, describe_directory
from mmfeat.pipelines.sources.guard import escaped, is_encodable
from mmfeat.pipelines.sources.json_stream import JsonStreamError, iter_members
from mmfeat.pipelines.storage import StorePath, is_file, location
from mmfeat.schemas.records import CaptionedImage, ImageObject, Reject

_STAGE = "read"
EXPECTED_LAYOUT = (
    "expected a COCO folder: annotations/captions_<split>.json (optionally annotations/instances_<split>.json) "
    "and the images under <split>/, e.g. annotations/captions_val2017.json with val2017/*.jpg"
)


@dataclass(frozen=True)
class Listing:
    root: StorePath
    splits: tuple[str, ...]
    units: tuple[CaptionedImage | Reject, ...]

    def expected_examples(self) -> int:
        return len(self.units)


def discover(
    root: str | StorePath, *, splits: Sequence[str] = (), instances: bool = True, require_captions: bool = True
) -> Listing:
    """List every image of the chosen splits (all found when ``splits`` is empty); raises :class:`LayoutError`."""
    root = location(root)
    annotations = root / "annotations"
    found = {p.name[len("captions_") : -len(".json")]: p for p in sorted(annotations.glob("captions_*.json"))}
    if not found:
        raise LayoutError(f"{root}: no annotations/captions_<split>.json; {EXPECTED_LAYOUT}. {describe_directory(root)}")
    unknown = sorted(set(splits) - set(found))
    if unknown:
        raise LayoutError(f"coco.splits: no captions file for {', '.join(unknown)} (found: {', '.join(found)})")
    chosen = tuple(s for s in found if not splits or s in splits)
    units: list[CaptionedImage | Reject] = []
    for split in chosen:
        images_dir = root / split
        if not images_dir.is_dir():
            raise LayoutError(f"{images_dir}: image folder of split {split!r} is missing; {EXPECTED_LAYOUT}")
        instances_file = annotations / f"instances_{split}.json"
        units += read_split(
            split,
            found[split],
            instances_file if instances and instances_file.is_file() else None,
            images_dir=images_dir,
            root=root,
            require_captions=require_captions,
        )
    return Listing(root=root, splits=chosen, units=tuple(units))


def read_split(
    split: str,
    captions_file: StorePath,
    instances_file: StorePath | None,
    *,
    images_dir: StorePath,
    root: StorePath,
    require_captions: bool,
) -> list[CaptionedImage | Reject]:
    """Join a split's images, captions and (optional) objects into records; bad entries become rejects."""
    images, rejects = _read_images(split, captions_file)
    captions: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for ann_id, image_id, caption in _read_captions(split, captions_file, rejects):
        if image_id in images:
            captions[image_id].append((ann_id, caption))
        else:
            rejects.append(_annotation_reject(split, captions_file, ann_id, "orphan_annotation", f"unknown image_id {image_id}"))
    objects = _read_objects(split, instances_file, images, rejects) if instances_file else None
    records: list[CaptionedImage | Reject] = []
    for image_id, entry in sorted(images.items()):
        texts = sorted(captions.get(image_id, ()))
        relative = os.path.normpath(os.path.join(split, entry["file_name"])).replace(os.sep, "/")
        record = CaptionedImage(
            sample_id=sample_id_of(image_id),
            split=split,
            source_path=relative,
            image_path=str(root / relative),
            image_id=image_id,
            width=entry.get("width"),
            height=entry.get("height"),
            captions=tuple(text for _, text in texts),
            caption_ids=tuple(ann_id for ann_id, _ in texts),
            objects=tuple(sorted(objects.get(image_id, ()), key=lambda o: o.annotation_id)) if objects is not None else None,
        )
        if require_captions and not record.captions:
            records.append(
                _reject(record, "no_captions", f"no caption annotation for image_id {image_id} in {captions_file.name}")
            )
        else:
            records.append(record)
    return records + rejects


def sample_id_of(image_id: int) -> str:
    """COCO's own 12-digit zero padding, so sample-id order is numeric order."""
    return f"{image_id:012d}"


def parse_unit(unit: CaptionedImage | Reject) -> Iterator[CaptionedImage | Reject]:
    """Check the image file of one listed record: inside its split folder, present, a regular file."""
    if isinstance(unit, Reject):
        yield unit
        return
    if unit.source_path.startswith("../") or not unit.source_path.startswith(f"{unit.split}/") or os.path.isabs(unit.source_path):
        yield _reject(unit, "path_escapes_root", f"file_name resolves to {unit.source_path!r}, outside {unit.split}/")
    elif not is_file(unit.image_path):
        yield _reject(unit, "image_missing", f"{unit.source_path} is referenced by the annotations but not on disk")
    else:
        yield unit


def _read_images(split: str, path: StorePath) -> tuple[dict[int, dict[str, Any]], list[Reject]]:
    images: dict[int, dict[str, Any]] = {}
    rejects: list[Reject] = []
    for index, raw in enumerate(item for key, item in _members(path) if key == "images"):
        entry = _normalised_image_entry(raw)
        problem = _image_entry_problem(entry, raw)
        if problem:
            image_id = entry.get("id") if isinstance(entry, dict) else None
            sample = sample_id_of(image_id) if image_id is not None else f"images[{index}]"
            rejects.append(Reject(sample, split, f"annotations/{path.name}", _STAGE, "annotation_malformed", problem))
        elif entry["id"] in images:
            rejects.append(
                Reject(
                    f"{sample_id_of(entry['id'])}#images[{index}]",
                    split,
                    f"{split}/{entry['file_name']}",
                    _STAGE,
                    "duplicate_image_id",
                    f"image id {entry['id']} is listed again at images[{index}] (first entry kept)",
                )
            )
        else:
            images[entry["id"]] = {k: entry.get(k) for k in ("file_name", "width", "height")}
    return images, rejects


INT64_MAX = 2**63 - 1  # image and annotation ids are int64 columns
INT32_MAX = 2**31 - 1  # category ids (box_category_ids), widths and heights are int32 columns


def as_id(value: Any, *, limit: int = INT64_MAX) -> int | None:
    """A non-negative integer id up to ``limit`` from an int, an integral float (``12.0``) or a digit string
    (``"12"``); else None (the entry is then rejected as malformed, never written as a wrapped-around number)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):  # at most 19 digits: int() of a 5000-digit string raises, and no id is that long
        text = value.strip()
        value = int(text) if text.isascii() and text.isdigit() and len(text) <= 19 else None
    elif isinstance(value, float):
        value = int(value) if value.is_integer() else None
    return value if isinstance(value, int) and 0 <= value <= limit else None


def _normalised_image_entry(raw: Any) -> Any:
    if not isinstance(raw, dict):
        return raw
    sizes = {k: as_id(raw.get(k), limit=INT32_MAX) for k in ("width", "height")}
    return {**raw, "id": as_id(raw.get("id")), **sizes}


def _image_entry_problem(entry: Any, raw: Any) -> str | None:
    if not isinstance(entry, dict):
        return f"image entry is not an object: {str(raw)[:80]}"
    if entry["id"] is None:
        return f"image entry has no integer id within 0..2^63-1: {str(raw)[:120]}"
    if not isinstance(entry.get("file_name"), str) or not entry["file_name"].strip():
        return f"image {entry['id']} has no file_name"
    for key in ("width", "height"):
        if raw.get(key) is not None and not entry[key]:
            return f"image {entry['id']} has a bad {key}: {raw[key]!r}"
    return None


def _read_captions(split: str, path: StorePath, rejects: list[Reject]) -> Iterator[tuple[int, int, str]]:
    for index, ann in enumerate(item for key, item in _members(path) if key == "annotations"):
        ann_id = as_id(ann.get("id")) if isinstance(ann, dict) else None
        image_id = as_id(ann.get("image_id")) if isinstance(ann, dict) else None
        if ann_id is None or image_id is None or not isinstance(ann.get("caption"), str) or not ann["caption"].strip():
            label = ann_id if ann_id is not None else f"annotations[{index}]"
            rejects.append(_annotation_reject(split, path, label, "annotation_malformed", f"caption entry: {str(ann)[:120]}"))
            continue
        if not is_encodable(ann["caption"]):  # a lone surrogate (JSON "\ud83d"): this caption, not its image
            detail = f"caption {ann_id} is not valid Unicode: {escaped(ann['caption'])[:120]}"
            rejects.append(_annotation_reject(split, path, ann_id, "text_invalid_unicode", detail))
            continue
        yield ann_id, image_id, ann["caption"]


def _read_objects(
    split: str, path: StorePath, images: dict[int, dict[str, Any]], rejects: list[Reject]
) -> dict[int, list[ImageObject]]:
    categories: dict[int, str] = {}
    pending: list[tuple[int, ImageObject]] = []
    for key, item in _members(path):
        if key == "categories" and isinstance(item, dict) and as_id(item.get("id"), limit=INT32_MAX) is not None:
            categories[as_id(item["id"], limit=INT32_MAX)] = str(item.get("name", ""))
        elif key == "annotations":
            parsed = _object_of(item)
            if isinstance(parsed, str):
                ann_id = item.get("id", "?") if isinstance(item, dict) else "?"  # as written, for the reject id
                rejects.append(_annotation_reject(split, path, ann_id, "annotation_malformed", parsed))
            elif parsed[0] not in images:
                rejects.append(
                    _annotation_reject(split, path, parsed[1].annotation_id, "orphan_annotation", f"unknown image_id {parsed[0]}")
                )
            else:
                pending.append(parsed)
    objects: dict[int, list[ImageObject]] = defaultdict(list)
    for image_id, obj in pending:  # categories may come after the annotations in the file
        if obj.category_id not in categories:
            rejects.append(
                _annotation_reject(split, path, obj.annotation_id, "unknown_category", f"category_id {obj.category_id}")
            )
            continue
        objects[image_id].append(replace(obj, category=categories[obj.category_id]))
    return objects


def _object_of(ann: Any) -> tuple[int, ImageObject] | str:
    """(image_id, object) from an instance annotation, or what is wrong with it."""
    limits = {"id": INT64_MAX, "image_id": INT64_MAX, "category_id": INT32_MAX}
    ids = {k: as_id(ann.get(k), limit=limit) for k, limit in limits.items()} if isinstance(ann, dict) else {}
    if not ids or None in ids.values():
        return f"instance entry without integer id/image_id (0..2^63-1) and category_id (0..2^31-1): {str(ann)[:120]}"
    ann = {**ann, **ids}
    bbox = ann.get("bbox")
    if not isinstance(bbox, list) or len(bbox) != 4 or not all(_finite(v) for v in bbox) or bbox[2] < 0 or bbox[3] < 0:
        return f"annotation {ann['id']}: bbox must be [x, y, w, h] with w, h >= 0, got {bbox!r}"
    area = ann.get("area", bbox[2] * bbox[3])
    obj = ImageObject(
        annotation_id=ann["id"],
        category_id=ann["category_id"],
        category="",
        bbox=tuple(float(v) for v in bbox),
        area=float(area) if _finite(area) else float(bbox[2] * bbox[3]),
        iscrowd=bool(ann.get("iscrowd", 0)),
    )
    return ann["image_id"], obj


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _members(path: StorePath) -> Iterator[tuple[str, Any]]:
    try:
        yield from iter_members(path)
    except (JsonStreamError, UnicodeDecodeError) as err:
        raise LayoutError(f"{path}: not a valid COCO annotation file: {err}") from err
    except OSError as err:
        raise LayoutError(f"{path}: cannot read: {err}") from err


def _annotation_reject(split: str, path: StorePath, ann_id: Any, reason: str, detail: str) -> Reject:
    return Reject(f"{path.stem}#{ann_id}", split, f"annotations/{path.name}", _STAGE, reason, detail)


def _reject(record: CaptionedImage, reason: str, detail: str) -> Reject:
    return Reject(record.sample_id, record.split, record.source_path, _STAGE, reason, detail)
