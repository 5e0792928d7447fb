"""The clip face crop: OpenCV's Haar cascade on real photos (scikit-image's astronaut has one face)."""

import numpy as np
import pytest

from mmfeat.extractors.faces import FaceDetector

cv2 = pytest.importorskip("cv2")
skimage_data = pytest.importorskip("skimage.data")
pytestmark = pytest.mark.skipif(not hasattr(cv2, "CascadeClassifier"), reason="OpenCV 5 has no cascade classifier")

FACE = (177, 66, 95, 95)  # x, y, w, h of the astronaut's face in the 512 x 512 photo (the cascade's own answer)


def inside(box, face=FACE) -> bool:
    x, y, w, _ = box
    fx, fy, fw, fh = face
    return x <= fx and y <= fy and x + w >= fx + fw and y + w >= fy + fh


def test_the_face_is_found_and_widened_by_the_margin():
    detector = FaceDetector(margin=1.6)
    faces = detector.faces(skimage_data.astronaut())
    assert np.allclose(faces[0], FACE, atol=8)  # the surest first (searched at 320 px, a weak false hit can follow)
    box = detector.clip_box([skimage_data.astronaut()] * 3)
    assert box.source == "face" and inside(box.as_list())
    assert abs(box.side - 1.6 * faces[0][2]) <= 2


def test_one_box_per_clip_is_the_median_of_the_frames_faces():
    photo = skimage_data.astronaut()
    shifted = np.roll(photo, 40, axis=1)  # the face 40 px to the right in one frame of three
    box = FaceDetector().clip_box([photo, shifted, photo])
    assert box.source == "face" and inside(box.as_list())  # the outlier frame does not move the crop


def test_a_clip_without_faces_falls_back_to_the_centre_square():
    coffee = skimage_data.coffee()  # 400 x 600
    box = FaceDetector().clip_box([coffee, coffee])
    assert (box.source, box.as_list()) == ("centre", [100, 0, 400, 400])


def test_the_box_stays_inside_the_frame_near_an_edge():
    photo = skimage_data.astronaut()[:, 120:]  # face near the left edge: x 57..152 of 392
    box = FaceDetector(margin=2.5).clip_box([photo])
    x, y, side, _ = box.as_list()
    assert box.source == "face" and x == 0 and y >= 0 and y + side <= photo.shape[0] and side <= photo.shape[1]
    assert box.apply(photo).shape == (side, side, 3)


def test_an_unloadable_cascade_names_the_config_key(tmp_path):
    bad = tmp_path / "cascade.xml"
    bad.write_text("<opencv_storage></opencv_storage>")
    for path in (bad, tmp_path / "missing.xml"):
        with pytest.raises(ValueError, match="video.face_model"):
            FaceDetector(str(path))
