"""Tiny datasets in the real on-disk layouts, with deliberately broken files, for the demo and tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from mmfeat.runners.samples.coco import write_coco_sample
from mmfeat.runners.samples.iemocap import write_iemocap_sample
from mmfeat.runners.samples.librispeech import write_librispeech_sample

# name -> writer(out_dir) returning the folder to pass as ``mmfeat run NAME --input``
SAMPLES: dict[str, Callable[[Path], Path]] = {
    "librispeech": write_librispeech_sample,
    "coco": write_coco_sample,
    "iemocap": write_iemocap_sample,
}
