"""What a forked SDK worker finds imported already (``runners.forked_workers``): Beam's worker, the
libraries that every dataset's stages import before their first element, and the job's heavy stages
warmed up (their ``warm_up``: librosa's numba functions compiled or loaded from its cache). torch is
left out: only encoders need it, and a worker imports it then, as before.

The fork server imports this module once. Nothing here may raise: an error would end the server, and a
worker imports whatever is missing itself anyway."""

import logging
import os

from mmfeat.runners.interrupts import die_with_parent

# The fork server dies with the command that started it (``kill -9`` included), and its workers with it
# (``forked_workers.run_sdk_worker``): none is left behind. multiprocessing's own check, an end-of-file on a
# pipe from its parent, did not fire here: the server was still running 25 s after its parent was killed.
die_with_parent()


def _import_and_warm_up() -> None:
    import apache_beam.runners.worker.sdk_worker_main  # noqa: F401 - Beam, gRPC, protobuf
    import librosa
    import pyarrow.parquet  # noqa: F401
    import soundfile  # noqa: F401

    import mmfeat.pipelines.graph  # noqa: F401 - every transform, the schemas, the extractors they import
    from mmfeat.extractors.spacy_import import import_spacy
    from mmfeat.runners.forked_workers import WARM_UP_ENV

    import_spacy()
    for submodule in ("core", "feature", "filters", "util"):  # librosa imports these lazily, on first use
        getattr(librosa, submodule)
    stages = os.environ.pop(WARM_UP_ENV, None)
    if stages:
        import base64

        import cloudpickle

        from mmfeat.pipelines.transforms.warm_up import warm_up_now

        warm_up_now(cloudpickle.loads(base64.b64decode(stages)))


# A forked worker's log goes to the runner, which prints what matters. Without a handler here, the first
# module-level ``logging.warning`` (Beam's "apitools not found", at import) gave the root logger a console
# handler that every worker inherited, and Beam then sets the root level to INFO in its workers.
logging.getLogger().addHandler(logging.NullHandler())
try:
    _import_and_warm_up()
except Exception:
    logging.getLogger(__name__).debug("fork server: imports or warm-up failed", exc_info=True)
