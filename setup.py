"""The package list, found from the folders (pyproject.toml maps mmfeat.pipelines to pipelines/, …): a new dataset
folder under pipelines/datasets/ is installed without an edit here or in pyproject.toml."""

from pathlib import Path

from setuptools import setup

ROOT = Path(__file__).resolve().parent
FOLDERS = ("schemas", "extractors", "pipelines", "runners")


def packages() -> list[str]:
    found = ["mmfeat"]
    for folder in FOLDERS:
        for init in sorted((ROOT / folder).rglob("__init__.py")):
            found.append(".".join(("mmfeat", *init.parent.relative_to(ROOT).parts)))
    return found


setup(packages=packages(), package_data={"": ["defaults.yaml"]})
