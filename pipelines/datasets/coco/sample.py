"""A COCO-2017-layout sample from the real photos that ship with scikit-image, with broken cases.

Splits ``train2017`` and ``val2017`` with captions and instances files. Besides clean photos
(JPEG, and some stored the way real datasets contain them: a PNG behind a .jpg name, grey,
16-bit, transparent, EXIF-rotated) it holds one example of every rejection the COCO pipeline
knows: zero-byte, truncated, undecodable, missing, path escaping the image folder, too small,
extreme aspect ratio, decompression bomb, no captions, an exact and a near duplicate, a
malformed image entry and annotations of unknown images; plus one image in both splits (leakage).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import numpy as np

CATEGORIES = [
    {"supercategory": "person", "id": 1, "name": "person"},
    {"supercategory": "vehicle", "id": 4, "name": "motorcycle"},
    {"supercategory": "animal", "id": 17, "name": "cat"},
    {"supercategory": "animal", "id": 19, "name": "horse"},
    {"supercategory": "kitchen", "id": 47, "name": "cup"},
]

# photo -> (captions, [(category_id, x, y, w, h)])
PHOTOS: dict[str, tuple[tuple[str, ...], tuple[tuple[int, float, float, float, float], ...]]] = {
    "chelsea": (
        (
            "A ginger tabby cat looking to the side.",
            "An orange cat sitting on a wooden floor.",
            "Close-up of a cat with green eyes.",
            "A striped cat turns its head.",
            "A pet cat resting indoors.",
        ),
        ((17, 95.0, 10.0, 300.0, 290.0),),
    ),
    "coffee": (
        (
            "A cup of coffee on a saucer.",
            "A white mug of espresso with a spoon.",
            "Coffee in a porcelain cup on a red table.",
            "A hot drink served in a cup and saucer.",
            "An espresso cup seen from above.",
        ),
        ((47, 120.0, 20.0, 400.0, 350.0),),
    ),
    "astronaut": (
        (
            "An astronaut in a white space suit poses for a portrait.",
            "A smiling woman in a spacesuit holding a helmet.",
            "Portrait of an astronaut in front of a flag.",
            "A person in a NASA space suit.",
            "An official astronaut photo.",
        ),
        ((1, 40.0, 0.0, 430.0, 512.0),),
    ),
    "rocket": (
        (
            "A rocket on the launch pad.",
            "A space shuttle ready for launch.",
            "A tall rocket against a blue sky.",
            "Launch tower next to a rocket.",
            "A rocket stands on its pad before takeoff.",
        ),
        (),
    ),
    "immunohistochemistry": (
        (
            "A microscope image of stained tissue.",
            "Cells stained brown and blue under a microscope.",
            "A histology slide seen at high magnification.",
            "Stained tissue sample.",
            "Brown and blue stained cells.",
        ),
        (),
    ),
    "hubble_deep_field": (
        (
            "Many distant galaxies in a dark sky.",
            "A deep field image of space full of galaxies.",
            "Stars and galaxies on a black background.",
            "A telescope image of the night sky.",
            "Hundreds of small galaxies.",
        ),
        (),
    ),
    "retina": (
        (
            "A photograph of the back of an eye.",
            "A retina with blood vessels.",
            "A fundus image of a human eye.",
            "Red retina with branching vessels.",
            "Medical image of an eye.",
        ),
        (),
    ),
    "camera": (
        (
            "A black and white photo of a man with a camera.",
            "A photographer with a tripod in a field.",
            "A man looking through a camera.",
            "Grey-scale picture of a cameraman.",
            "A person filming outdoors.",
        ),
        ((1, 100.0, 20.0, 240.0, 470.0),),
    ),
}


def _encode(rgb: np.ndarray, ext: str = ".jpg", quality: int = 92) -> bytes:
    """Encode RGB, RGBA or grey pixels (uint8, or uint16 for PNG)."""
    import cv2

    image = rgb
    if rgb.ndim == 3:
        image = cv2.cvtColor(rgb, cv2.COLOR_RGBA2BGRA if rgb.shape[2] == 4 else cv2.COLOR_RGB2BGR)
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if ext == ".jpg" else []
    ok, buffer = cv2.imencode(ext, image, params)
    if not ok:
        raise RuntimeError(f"could not encode a sample image as {ext}")
    return buffer.tobytes()


def _with_exif_orientation(jpeg: bytes, orientation: int) -> bytes:
    tiff = b"MM\x00*" + struct.pack(">IH", 8, 1) + struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack(">I", 0)
    payload = b"Exif\x00\x00" + tiff
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


def _png_bomb(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height: the cleaner must refuse it without decoding."""
    return (
        b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0) + b"IEND"
    )


class _Split:
    """Accumulates one split's files and annotation entries."""

    def __init__(self, root: Path, name: str) -> None:
        self.name = name
        self.folder = root / name
        self.folder.mkdir(parents=True, exist_ok=True)
        self.images: list[dict[str, Any]] = []
        self.captions: list[dict[str, Any]] = []
        self.objects: list[dict[str, Any]] = []

    def add(
        self,
        image_id: int,
        data: bytes | None,
        size: tuple[int, int],
        captions: tuple[str, ...] = (),
        boxes: tuple[tuple[int, float, float, float, float], ...] = (),
        *,
        file_name: str | None = None,
    ) -> None:
        file_name = file_name or f"{image_id:012d}.jpg"
        if data is not None:
            (self.folder / file_name).write_bytes(data)
        self.images.append({"license": 1, "file_name": file_name, "height": size[1], "width": size[0], "id": image_id})
        for caption in captions:
            self.captions.append({"image_id": image_id, "id": 1000 * image_id + len(self.captions), "caption": caption})
        for category_id, x, y, w, h in boxes:
            self.objects.append(
                {
                    "segmentation": [[x, y, x + w, y, x + w, y + h, x, y + h]],
                    "area": w * h * 0.8,
                    "iscrowd": 0,
                    "image_id": image_id,
                    "bbox": [x, y, w, h],
                    "category_id": category_id,
                    "id": 500000 + len(self.objects),
                }
            )

    def write_annotations(self, annotations: Path) -> None:
        info = {"description": "mmfeat COCO-layout sample (scikit-image photos)", "version": "1.0", "year": 2017}
        licenses = [{"url": "https://scikit-image.org/docs/stable/api/skimage.data.html", "id": 1, "name": "see scikit-image"}]
        captions = {"info": info, "licenses": licenses, "images": self.images, "annotations": self.captions}
        (annotations / f"captions_{self.name}.json").write_text(json.dumps(captions), encoding="utf-8")
        instances = {**captions, "annotations": self.objects, "categories": CATEGORIES}
        (annotations / f"instances_{self.name}.json").write_text(json.dumps(instances), encoding="utf-8")


def _photo(name: str) -> np.ndarray:
    """A scikit-image photo as it ships: RGB, RGBA, grey or boolean."""
    try:
        from skimage import data
    except ImportError as err:  # pragma: no cover - the demo installs it
        raise RuntimeError("the COCO sample is built from scikit-image's photos: pip install scikit-image") from err
    return getattr(data, name)()


def write_coco_sample(out: str | Path) -> Path:
    """Write the sample under ``out/coco`` and return that folder."""
    import cv2

    root = Path(out) / "coco"
    annotations = root / "annotations"
    annotations.mkdir(parents=True, exist_ok=True)
    train, val = _Split(root, "train2017"), _Split(root, "val2017")

    image_id = 100
    for name, (captions, boxes) in PHOTOS.items():
        rgb = _photo(name)
        if name == "retina":
            rgb = cv2.resize(rgb, (640, 640), interpolation=cv2.INTER_AREA)
        train.add(image_id, _encode(rgb), (rgb.shape[1], rgb.shape[0]), captions, boxes)
        image_id += 7

    chelsea, coffee, astronaut = _photo("chelsea"), _photo("coffee"), _photo("astronaut")
    cat_captions, cat_boxes = PHOTOS["chelsea"]
    # Stored the way real collections store them: a PNG behind a .jpg name, 16-bit, transparent, EXIF-rotated
    # (the cameraman above is a one-channel grey JPEG).
    mirrored = np.ascontiguousarray(astronaut[::2, ::-2])
    train.add(201, _encode(mirrored, ".png"), (256, 256), ("A small mirrored astronaut portrait saved as PNG.",))
    horse = np.where(_photo("horse"), 0, 65535).astype(np.uint16)
    train.add(203, _encode(horse, ".png"), (400, 328), ("A silhouette of a horse.",), ((19, 20.0, 20.0, 360.0, 290.0),))
    train.add(204, _encode(_photo("logo"), ".png"), (500, 500), ("The scikit-image logo on a transparent background.",))
    rotated = _with_exif_orientation(_encode(chelsea), 6)  # stored landscape, displayed portrait; boxes on stored pixels
    train.add(205, rotated, (451, 300), ("A cat photo taken with the camera turned.",), cat_boxes)

    # Duplicates within train: an exact copy, and a re-encoded, resized copy (near duplicate).
    train.add(301, _encode(chelsea), (451, 300), cat_captions, cat_boxes)
    smaller = cv2.resize(coffee, (450, 300), interpolation=cv2.INTER_AREA)
    train.add(302, _encode(smaller, quality=70), (450, 300), PHOTOS["coffee"][0])

    # Broken files and entries: each ends as one reject with its reason.
    whole = _encode(astronaut)
    train.add(401, b"", (512, 512), ("An empty file.",))  # image_empty
    train.add(402, whole[: len(whole) // 2], (512, 512), ("A half-written file.",))  # image_truncated
    train.add(403, b"<html>404 Not Found</html>", (512, 512), ("A web page saved as an image.",))  # image_undecodable
    train.add(404, None, (640, 480), ("A file that was never downloaded.",))  # image_missing
    train.add(405, _encode(astronaut), (512, 512), ("Outside the image folder.",), file_name="../escaped.jpg")
    train.add(406, _encode(astronaut[:24, :24]), (24, 24), ("A thumbnail.",))  # image_too_small
    train.add(407, _encode(astronaut[:50, :]), (512, 50), ("A thin strip.",))  # image_aspect_ratio
    train.add(408, _png_bomb(50000, 50000), (50000, 50000), ("A decompression bomb.",), file_name=f"{408:012d}.png")
    train.add(409, _encode(coffee[:200, :300]), (300, 200))  # no_captions
    train.images.append({"license": 1, "height": 10, "width": 10, "id": 410})  # no file_name: annotation_malformed
    train.captions.append({"image_id": 999999, "id": 777777, "caption": "A caption for an image that is not listed."})
    (root / "escaped.jpg").write_bytes(_encode(astronaut))

    # Validation: clean photos (crops), plus the astronaut that is also in train (leakage, reported in the manifest).
    for i, (name, box) in enumerate(
        (("coffee", (0, 0, 400, 400)), ("rocket", (100, 0, 427, 427)), ("chelsea", (0, 0, 300, 300)))
    ):
        x, y, w, h = box
        crop = np.ascontiguousarray(_photo(name)[y : y + h, x : x + w])
        val.add(900 + i, _encode(crop), (w, h), tuple(f"A cropped view: {c.lower()}" for c in PHOTOS[name][0][:3]))
    val.add(950, _encode(astronaut), (512, 512), PHOTOS["astronaut"][0], PHOTOS["astronaut"][1])

    train.write_annotations(annotations)
    val.write_annotations(annotations)
    return root
