"""Worker packaging: the wheel that remote Beam workers install, and the container image's name.

Remote runners (Flink, Dataflow) run the pipeline's DoFns in SDK worker processes on other machines,
which need ``mmfeat`` and its dependencies. Two ways, in the order Beam's documentation recommends
for heavy dependencies (torch, PyAV, OpenCV):

1. a custom SDK container image with everything installed (``container/Dockerfile``; ``make
   container`` builds it as :func:`default_image`), passed as ``--sdk_container_image``;
2. the project's wheel staged with ``--extra_package``: workers ``pip install`` it (and its
   dependencies from PyPI) at start-up. :func:`build_wheel` builds it from a source checkout.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


class PackagingError(RuntimeError):
    """The wheel could not be built (no source checkout, or the build failed)."""


def project_root() -> Path | None:
    """The source checkout ``mmfeat`` runs from (an editable install), or None for an installed wheel."""
    import mmfeat

    root = Path(mmfeat.__file__).resolve().parent.parent
    return root if (root / "pyproject.toml").is_file() and (root / "runners" / "cli.py").is_file() else None


def build_wheel(dest: Path, source: Path | None = None) -> Path:
    """Build the ``mmfeat`` wheel (no dependencies) from ``source`` (default: this checkout) into ``dest``."""
    source = source or project_root()
    if source is None:
        raise PackagingError(
            "mmfeat is installed from a wheel, not a source checkout, so it cannot build one: pass the wheel you "
            "installed from with --extra_package=PATH, or a worker image with --sdk_container_image=IMAGE"
        )
    dest.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check", "-q", "-w", str(dest)]
    done = subprocess.run([*command, str(source)], capture_output=True, text=True)
    wheels = sorted(dest.glob("mmfeat-*.whl"), key=lambda p: p.stat().st_mtime)
    if done.returncode != 0 or not wheels:
        raise PackagingError(f"building the mmfeat wheel from {source} failed:\n{done.stderr.strip()[-2000:]}")
    return wheels[-1]


def default_image() -> str:
    """The tag ``make container`` gives the worker image: mmfeat, Python and Beam versions must match the launcher's."""
    import apache_beam

    import mmfeat

    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    return f"mmfeat-worker:{mmfeat.__version__}-py{python}-beam{apache_beam.__version__}"
