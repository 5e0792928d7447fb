import json

import pytest

from mmfeat.pipelines.datasets.coco import source as coco
from mmfeat.pipelines.sources.base import LayoutError
from mmfeat.pipelines.sources.json_stream import JsonStreamError, iter_members
from mmfeat.schemas.records import CaptionedImage, Reject

DOC = {
    "info": {"year": 2017},
    "images": [{"id": i, "file_name": f"{i:012d}.jpg", "width": 64, "height": 48} for i in range(1, 40)],
    "annotations": [{"id": 100 + i, "image_id": 1 + i % 39, "caption": f"caption ünicode {i} 1e5"} for i in range(90)],
    "empty": [],
    "number": 12345678901234,
}


@pytest.mark.parametrize("chunk", [1, 7, 64, 1 << 20])
def test_stream_yields_every_array_item_and_member_across_chunk_boundaries(tmp_path, chunk):
    path = tmp_path / "doc.json"
    path.write_text(json.dumps(DOC, indent=1, ensure_ascii=False), encoding="utf-8")
    members = list(iter_members(path, chunk_chars=chunk))
    assert [item for key, item in members if key == "images"] == DOC["images"]
    assert [item for key, item in members if key == "annotations"] == DOC["annotations"]
    assert ("info", {"year": 2017}) in members and ("number", 12345678901234) in members
    assert not [m for m in members if m[0] == "empty"]


@pytest.mark.parametrize(
    "text",
    ['{"images": [{"id": 1}, {"id": ', '{"images": [1, 2,, 3]}', '["not", "an", "object"]', '{"a": 1} trailing', '{"a" 1}'],
)
def test_stream_reports_malformed_json_with_a_position(tmp_path, text):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(JsonStreamError, match="character"):
        list(iter_members(path, chunk_chars=4))


def write_layout(root, images, captions, instances=None, files=()):
    (root / "annotations").mkdir(parents=True)
    (root / "val2017").mkdir()
    doc = {"images": images, "annotations": captions}
    (root / "annotations" / "captions_val2017.json").write_text(json.dumps(doc))
    if instances is not None:
        inst = {"images": images, "annotations": instances, "categories": [{"id": 3, "name": "car", "supercategory": "vehicle"}]}
        (root / "annotations" / "instances_val2017.json").write_text(json.dumps(inst))
    for name in files:
        (root / "val2017" / name).write_bytes(b"\xff\xd8\xff")
    return root


def test_read_joins_captions_and_objects_and_rejects_bad_entries(tmp_path):
    images = [
        {"id": 7, "file_name": "a.jpg", "width": 10, "height": 10},
        {"id": 3, "file_name": "b.jpg"},
        {"id": 7, "file_name": "again.jpg"},
        {"file_name": "no_id.jpg"},
        {"id": 9, "file_name": "c.jpg"},
    ]
    captions = [
        {"id": 2, "image_id": 7, "caption": "second"},
        {"id": 1, "image_id": 7, "caption": "first"},
        {"id": 3, "image_id": 3, "caption": "bee"},
        {"id": 4, "image_id": 55, "caption": "orphan"},
        {"id": 5, "image_id": 3, "caption": None},
        {"id": 6, "image_id": 3, "caption": " \n "},
    ]
    instances = [
        {"id": 11, "image_id": 7, "category_id": 3, "bbox": [1, 2, 3, 4], "area": 9.5, "iscrowd": 0},
        {"id": 12, "image_id": 7, "category_id": 3, "bbox": [1, 2, 3]},
        {"id": 13, "image_id": 7, "category_id": 99, "bbox": [0, 0, 1, 1]},
    ]
    listing = coco.discover(write_layout(tmp_path, images, captions, instances), splits=("val2017",))
    records = {u.sample_id: u for u in listing.units if isinstance(u, CaptionedImage)}
    rejects = {u.reason: u for u in listing.units if isinstance(u, Reject)}
    assert list(records) == ["000000000003", "000000000007"]
    assert records["000000000007"].captions == ("first", "second") and records["000000000007"].caption_ids == (1, 2)
    (obj,) = records["000000000007"].objects
    assert (obj.category, obj.bbox, obj.area, obj.iscrowd) == ("car", (1.0, 2.0, 3.0, 4.0), 9.5, False)
    assert records["000000000003"].objects == ()
    assert set(rejects) == {"no_captions", "duplicate_image_id", "annotation_malformed", "orphan_annotation", "unknown_category"}
    assert rejects["no_captions"].sample_id == "000000000009"
    assert sum(isinstance(u, Reject) and u.reason == "annotation_malformed" for u in listing.units) == 4  # a blank caption too
    assert records["000000000003"].captions == ("bee",)
    assert listing.expected_examples() == len(listing.units)


def test_parse_checks_the_file_is_inside_the_split_folder_and_present(tmp_path):
    images = [{"id": i, "file_name": name} for i, name in enumerate(["ok.jpg", "../x.jpg", "/etc/passwd", "gone.jpg"])]
    captions = [{"id": i, "image_id": i, "caption": "c"} for i in range(4)]
    listing = coco.discover(write_layout(tmp_path, images, captions, files=["ok.jpg"]))
    outcomes = [out for unit in listing.units for out in coco.parse_unit(unit)]
    assert [getattr(o, "reason", "ok") for o in outcomes] == ["ok", "path_escapes_root", "path_escapes_root", "image_missing"]


def test_discover_fails_clearly_on_a_wrong_layout(tmp_path):
    with pytest.raises(LayoutError, match="captions_<split>.json"):
        coco.discover(tmp_path)
    root = write_layout(tmp_path / "c", [], [])
    with pytest.raises(LayoutError, match="no captions file for train2017"):
        coco.discover(root, splits=("train2017",))
    (root / "val2017").rmdir()
    with pytest.raises(LayoutError, match="image folder of split 'val2017' is missing"):
        coco.discover(root)


def test_ids_and_sizes_written_as_integral_floats_or_digit_strings_are_accepted(tmp_path):
    images = [{"id": "12", "file_name": "a.jpg", "width": 640.0, "height": 480.0}, {"id": 1.5, "file_name": "b.jpg"}]
    captions = [{"id": 3.0, "image_id": "12", "caption": "a cat"}]
    listing = coco.discover(write_layout(tmp_path, images, captions))
    record = next(u for u in listing.units if isinstance(u, CaptionedImage))
    assert (record.image_id, record.width, record.height, record.caption_ids) == (12, 640, 480, (3,))
    assert [u.reason for u in listing.units if isinstance(u, Reject)] == ["annotation_malformed"]


def test_ids_out_of_their_column_range_and_lone_surrogates_are_rejects_not_crashes(tmp_path):
    import json

    from mmfeat.pipelines.datasets.coco.source import read_split
    from mmfeat.schemas.records import CaptionedImage, Reject

    (tmp_path / "val").mkdir()
    captions = {
        "images": [
            {"id": 1, "file_name": "1.jpg"},
            {"id": 2**63, "file_name": "2.jpg"},
            {"id": "9" * 5000, "file_name": "3.jpg"},
            {"id": 4, "file_name": "4.jpg", "width": 2**31},
        ],
        "annotations": [
            {"id": 10, "image_id": 1, "caption": "a cat"},
            {"id": 11, "image_id": 1, "caption": "caf\udce9"},
            {"id": 2**64, "image_id": 1, "caption": "overflowing id"},
        ],
    }
    instances = {
        "categories": [{"id": 2**40, "name": "huge"}, {"id": 1, "name": "cat"}],
        "annotations": [
            {"id": 20, "image_id": 1, "category_id": 2**40, "bbox": [0, 0, 1, 1]},
            {"id": 21, "image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1]},
        ],
    }
    (tmp_path / "captions.json").write_text(json.dumps(captions))
    (tmp_path / "instances.json").write_text(json.dumps(instances))
    out = read_split(
        "val", tmp_path / "captions.json", tmp_path / "instances.json", images_dir=tmp_path / "val", root=tmp_path,
        require_captions=True,
    )  # fmt: skip
    (record,) = [o for o in out if isinstance(o, CaptionedImage)]
    assert record.captions == ("a cat",) and [o.category_id for o in record.objects] == [1]
    reasons = sorted(o.reason for o in out if isinstance(o, Reject))
    assert reasons == ["annotation_malformed"] * 5 + ["text_invalid_unicode"]
