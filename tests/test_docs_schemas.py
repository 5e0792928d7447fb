"""docs/output.md documents exactly the columns the code's schemas have: every column of each dataset's table
(for its defaults and with every optional column turned on) is in the dataset's table in the docs, and every
column the docs list exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mmfeat.pipelines.datasets.folder.sample import write_folder_sample
from mmfeat.pipelines.registry import DATASETS
from mmfeat.runners.config import load_config

DOCS = Path(__file__).resolve().parents[1] / "docs" / "output.md"
OPTIONS = {  # --set overrides that turn every optional column on
    "librispeech": ["mfcc.log_mel=true", "text.lemmatize=true", "encode.audio.name=resemblyzer"],
    "coco": ["image.jpeg_quality=90", "text.lemmatize=true", "encode.text.name=minilm_l6"],
    "iemocap": ["iemocap.frame_embeddings=true", "iemocap.fusion=true", "encode.text.name=minilm_l6", "mfcc.log_mel=true",
                "text.lemmatize=true"],  # fmt: skip
    "folder": ["image.jpeg_quality=90", "mfcc.log_mel=true", "text.lemmatize=true", "encode.audio.name=resemblyzer"],
}
SECTIONS = {"librispeech": "LibriSpeech", "coco": "COCO", "iemocap": "IEMOCAP", "folder": "Folder"}


def documented_columns(title: str) -> set[str]:
    text = DOCS.read_text(encoding="utf-8")
    match = re.search(rf"^## {title} table.*?$(.*?)(?=^## |\Z)", text, flags=re.M | re.S)
    assert match, f"docs/output.md has no '## {title} table' section"
    names = set()
    for line in match.group(1).splitlines():
        if line.startswith("| ") and not line.startswith(("| column", "|---")):
            names.update(name.strip(" `") for name in line.split("|")[1].split(","))
    return names


def schema_names(dataset: str, root: Path, overrides: list[str]) -> set[str]:
    """The table's columns for these settings: discovery and the feature graph, as a run plans them."""
    config = load_config(dataset, overrides=overrides)
    spec = DATASETS[dataset]
    return set(spec.feature_graph(spec.discover(root, config), config).schema.names)


@pytest.fixture(scope="module")
def roots(librispeech_root, coco_root, iemocap_root, tmp_path_factory):
    folder = write_folder_sample(tmp_path_factory.mktemp("folder_docs")).parent
    return {"librispeech": [librispeech_root], "coco": [coco_root], "iemocap": [iemocap_root],
            "folder": [folder / "images", folder / "audio"]}  # fmt: skip


def test_every_dataset_has_its_table_in_the_docs():
    assert set(SECTIONS) == set(DATASETS)


@pytest.mark.parametrize("dataset", sorted(SECTIONS))
def test_the_docs_list_exactly_the_schemas_columns(dataset, roots):
    documented = documented_columns(SECTIONS[dataset])
    every = set()
    for root in roots[dataset]:
        default = schema_names(dataset, root, [])
        assert default <= documented, f"undocumented columns of {dataset}: {sorted(default - documented)}"
        every |= default | schema_names(dataset, root, OPTIONS[dataset])
    assert every <= documented, f"undocumented optional columns of {dataset}: {sorted(every - documented)}"
    assert documented <= every, f"docs/output.md lists columns {dataset} does not have: {sorted(documented - every)}"
