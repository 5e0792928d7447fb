"""Object-store paths (``s3://``, ``gs://``, any scheme Beam's ``FileSystems`` knows) behind pathlib's interface.

The readers and writers were written against :class:`pathlib.Path`; :func:`location` gives them a ``Path`` for a
local path and an :class:`ObjectPath` for a URL, and the same code lists, reads and writes either. Local paths are
untouched: they never go through Beam.

Object stores have no folders: a "folder" is a key prefix, and listing one lists every key below it (Beam's
filesystems list without a delimiter). So each listing is kept (:class:`_Listings`) and the listings of the
folders below it are answered from it: discovering a dataset lists its bucket prefix once, not once per folder.
An object becomes visible only when its upload completes, so a write to the final name is atomic for readers.
"""

from __future__ import annotations

import bisect
import contextlib
import io
import os
import posixpath
import re
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+)://(.+)$")
_MANGLED_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):/(?!/)")  # argparse's Path turned gs://b/x into gs:/b/x


def is_url(path: str | Path | ObjectPath) -> bool:
    """``s3://bucket/key`` (or ``gs:/bucket/key``, as ``pathlib`` rewrites it), not a local path."""
    return isinstance(path, ObjectPath) or _URL.match(_unmangled(str(path))) is not None


def location(path: str | Path | ObjectPath) -> Path | ObjectPath:
    """The path to read or write: an :class:`ObjectPath` for a URL, else the local path, absolute."""
    if isinstance(path, ObjectPath):
        return path
    text = _unmangled(str(path))
    if _URL.match(text):
        return ObjectPath(text)
    return Path(path).expanduser().resolve()


def is_file(path: str) -> bool:
    """A regular file on disk, or an object in a store (answered from the listing of its "folder")."""
    return location(path).is_file() if is_url(path) else os.path.isfile(path)


def _unmangled(text: str) -> str:
    return _MANGLED_URL.sub(r"\1://", text, count=1)


@dataclass(frozen=True, order=True)
class ObjectPath:
    """A key (or key prefix) in an object store, with the part of pathlib's interface the readers use."""

    url: str

    def __post_init__(self) -> None:
        match = _URL.match(self.url)
        if match is None:
            raise ValueError(f"not an object-store URL: {self.url!r}")
        object.__setattr__(self, "url", f"{match.group(1)}://{match.group(2).rstrip('/')}")

    def __str__(self) -> str:
        return self.url

    def __fspath__(self) -> str:  # open(ObjectPath) would read a local file of that name: refuse it loudly
        raise TypeError(f"{self.url} is in an object store: read it with read_bytes() or open_read()")

    def __truediv__(self, other: str) -> ObjectPath:
        return ObjectPath(f"{self.url}/{str(other).strip('/')}")

    @property
    def scheme(self) -> str:
        return self.url.split("://", 1)[0]

    @property
    def bucket(self) -> str:
        return self.url.split("://", 1)[1].split("/", 1)[0]

    @property
    def name(self) -> str:
        return posixpath.basename(self._key_path())

    @property
    def stem(self) -> str:
        return posixpath.splitext(self.name)[0] if not self.name.startswith(".") or self.name.count(".") > 1 else self.name

    @property
    def suffix(self) -> str:
        return self.name[len(self.stem) :]

    @property
    def parent(self) -> ObjectPath:
        head = posixpath.dirname(self._key_path())
        return ObjectPath(f"{self.scheme}://{head}") if head else self

    @property
    def parts(self) -> tuple[str, ...]:
        return (f"{self.scheme}://", *self._key_path().split("/"))

    def _key_path(self) -> str:
        return self.url.split("://", 1)[1]

    def with_name(self, name: str) -> ObjectPath:
        return self.parent / name

    def expanduser(self) -> ObjectPath:
        return self

    def resolve(self) -> ObjectPath:
        return self

    def relative_to(self, other: ObjectPath) -> Path:
        if not self.url.startswith(other.url + "/"):
            raise ValueError(f"{self.url} is not under {other.url}")
        return Path(self.url[len(other.url) + 1 :])

    # What is there: answered from the listings.
    def exists(self) -> bool:
        return self.is_file() or self.is_dir()

    def is_file(self) -> bool:
        return _LISTINGS.size_of(self) is not None

    def is_dir(self) -> bool:
        return bool(_LISTINGS.keys_under(self, limit=1))

    def iterdir(self) -> Iterator[ObjectPath]:
        """The files and "folders" directly below (an empty prefix lists nothing: object stores keep no empty folders)."""
        start = len(self.url) + 1
        children = {key[start:].split("/", 1)[0] for key in _LISTINGS.keys_under(self)}
        return iter([self / child for child in sorted(children)])

    def glob(self, pattern: str) -> Iterator[ObjectPath]:
        """Entries directly below whose names match ``pattern`` (one level, as :meth:`pathlib.Path.glob` with no ``/``)."""
        if "/" in pattern:
            raise ValueError(f"ObjectPath.glob takes one level, not {pattern!r}")
        import fnmatch

        return iter([child for child in self.iterdir() if fnmatch.fnmatchcase(child.name, pattern)])

    def rglob(self, pattern: str) -> Iterator[ObjectPath]:
        """Every object below whose name matches ``pattern`` (objects only: prefixes are not folders)."""
        import fnmatch

        keys = _LISTINGS.keys_under(self)
        return iter([ObjectPath(key) for key in keys if fnmatch.fnmatchcase(posixpath.basename(key), pattern)])

    def stat(self) -> os.stat_result:
        """What a listing knows of an object: its size (no modification time: every other field is 0)."""
        return os.stat_result((0, 0, 0, 0, 0, 0, self.size(), 0, 0, 0))

    def size(self) -> int:
        size = _LISTINGS.size_of(self)
        if size is None:
            raise FileNotFoundError(2, "No such object", self.url)
        return size

    # Reading and writing.
    def open_read(self) -> io.BufferedIOBase:
        s3 = _s3io() if self.scheme == "s3" else None
        if s3 is not None:
            return s3.open(self.url, "rb")
        from apache_beam.io.filesystems import FileSystems

        return FileSystems.open(self.url, compression_type="uncompressed")

    def open(self, mode: str = "rb") -> io.BufferedIOBase:
        """For reading only (``"rb"``): writes go through :meth:`write_bytes` or :meth:`upload`, whole objects."""
        if mode != "rb":
            raise ValueError(f"{self.url}: open({mode!r}); objects are opened for reading only")
        return self.open_read()

    def read_bytes(self) -> bytes:
        with self.open_read() as handle:
            return handle.read()

    def read_text(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        return self.read_bytes().decode(encoding, errors)

    def write_bytes(self, data: bytes) -> None:
        """Upload ``data`` to this key; readers see the object only once it is complete."""
        with _write_errors(self), self._create() as out:
            out.write(data)
        _LISTINGS.forget(self)

    def _create(self) -> io.BufferedIOBase:
        s3 = _s3io() if self.scheme == "s3" else None
        if s3 is not None:
            return s3.open(self.url, "wb")
        from apache_beam.io.filesystems import FileSystems

        return FileSystems.create(self.url, mime_type="application/octet-stream", compression_type="uncompressed")

    def write_text(self, text: str, encoding: str = "utf-8") -> None:
        self.write_bytes(text.encode(encoding))

    def upload(self, local: Path, chunk_bytes: int = 16 << 20) -> None:
        """Copy a local file to this key in chunks (memory stays at one chunk, whatever the file's size)."""
        with _write_errors(self), open(local, "rb") as source, self._create() as out:
            while chunk := source.read(chunk_bytes):
                out.write(chunk)
        _LISTINGS.forget(self)

    def unlink(self, missing_ok: bool = False) -> None:
        from apache_beam.io.filesystems import FileSystems

        if not missing_ok and not self.is_file():
            raise FileNotFoundError(2, "No such object", self.url)
        if self.is_file():
            FileSystems.delete([self.url])
        _LISTINGS.forget(self)

    def mkdir(self, parents: bool = False, exist_ok: bool = False) -> None:
        """Nothing to do: a prefix exists once an object is written below it."""

    def rmdir(self) -> None:
        """Nothing to do: a prefix is gone once no object is below it."""


class ObjectStoreError(OSError):
    """An object could not be written (no such bucket, no permission, the store unreachable after retries)."""


@contextlib.contextmanager
def _write_errors(path: ObjectPath) -> Iterator[None]:
    """Beam's filesystems raise their clients' own errors (``S3ClientError``…): one kind here, naming the object."""
    try:
        yield
    except OSError:
        raise
    except Exception as err:  # noqa: BLE001 (each store's client has its own exception classes)
        raise ObjectStoreError(f"cannot write {path}: {err}") from err


class _Listing:
    """The objects below one prefix: their URLs sorted (a "folder" is a range of them) and their sizes."""

    def __init__(self, sizes: dict[str, int]) -> None:
        self.sizes = sizes
        self.keys = sorted(sizes)

    def below(self, prefix: str, limit: int | None = None) -> list[str]:
        start = bisect.bisect_left(self.keys, prefix)
        end = bisect.bisect_left(self.keys, prefix + "\U0010ffff") if limit is None else start + limit
        return [key for key in self.keys[start:end] if key.startswith(prefix)]


class _Listings:
    """Recent prefix listings, shared by every :class:`ObjectPath` of the process.

    A prefix is answered from the listing of any prefix above it: a folder's entries by a range of the sorted keys,
    an object's size by a lookup, so a dataset of a million objects costs its listing, not a million scans of it.
    Writes and deletes through :class:`ObjectPath` drop the listings they touch; objects changed by others are
    seen after :func:`forget_listings`.
    """

    def __init__(self, keep: int = 16) -> None:
        self._keep = keep
        self._lock = threading.Lock()
        self._listed: OrderedDict[str, _Listing] = OrderedDict()

    def _covering(self, prefix: ObjectPath) -> _Listing:
        """The kept listing of ``prefix`` or of a prefix above it; else ``prefix``'s, listed now and kept."""
        with self._lock:
            for listed, listing in self._listed.items():
                if listed == prefix.url or prefix.url.startswith(listed + "/"):
                    self._listed.move_to_end(listed)
                    return listing
        listing = _Listing(_list_prefix(prefix.url + "/"))
        with self._lock:
            self._listed[prefix.url] = listing
            while len(self._listed) > self._keep:
                self._listed.popitem(last=False)
        return listing

    def keys_under(self, prefix: ObjectPath, limit: int | None = None) -> list[str]:
        """The URLs of the objects below ``prefix``, sorted (the first ``limit`` of them)."""
        return self._covering(prefix).below(prefix.url + "/", limit)

    def size_of(self, path: ObjectPath) -> int | None:
        """An object's size; None when there is no object at ``path`` (a prefix is no object)."""
        return self._covering(path.parent).sizes.get(path.url)

    def forget(self, path: ObjectPath | None = None) -> None:
        with self._lock:
            if path is None:
                self._listed.clear()
                return
            for listed in [p for p in self._listed if path.url.startswith(p + "/") or p.startswith(path.url + "/")]:
                del self._listed[listed]


def _list_prefix(prefix: str) -> dict[str, int]:
    s3 = _s3io() if prefix.startswith("s3://") else None
    if s3 is not None:
        return dict(s3.list_files(prefix))
    from apache_beam.io.filesystems import FileSystems

    pattern = re.sub(r"([*?\[\]])", r"[\1]", prefix) + "**"  # the prefix itself may hold glob characters
    return {meta.path: meta.size_in_bytes for meta in FileSystems.match([pattern])[0].metadata_list}


_LISTINGS = _Listings()

StorePath = Path | ObjectPath
"""Where a dataset is read from or written to: a local path or an object-store key."""


def forget_listings(path: StorePath | None = None) -> None:
    """Drop the kept listings (those above and below ``path``; all without one): after other processes may have
    changed the store, such as a run's workers its output."""
    if path is None or isinstance(path, ObjectPath):
        _LISTINGS.forget(path)


EXTRAS = {"s3": "mmfeat[aws]", "gs": "mmfeat[gcp]"}


class StorageError(ValueError):
    """An object store that cannot be used at all: its filesystem is not installed, or it cannot be reached."""


@dataclass(frozen=True)
class StoreOptions:
    """The run's Beam flags (``--s3_endpoint_url``, credentials, ``--project``), carried by the DoFns that read or
    write the store and applied in each worker process (:meth:`apply`): S3 clients are made from them there."""

    flags: tuple[str, ...] = ()

    def apply(self) -> None:
        global _OPTIONS
        if self == _OPTIONS:
            return
        from apache_beam.io.filesystems import FileSystems
        from apache_beam.options.pipeline_options import PipelineOptions

        FileSystems.set_options(PipelineOptions(list(self.flags)))
        _OPTIONS = self
        _CLIENTS.__dict__.clear()  # this thread's; other threads see the new options by their own check
        forget_listings()


_OPTIONS: StoreOptions | None = None
_CLIENTS = threading.local()


def use_object_stores(beam_args: Sequence[str]) -> StoreOptions:
    """Point Beam's filesystems in this process at the run's options; what the DoFns carry to the workers."""
    options = StoreOptions(tuple(beam_args))
    options.apply()
    return options


def store_options() -> StoreOptions | None:
    """The options applied in this process (None: no object store used here)."""
    return _OPTIONS


def _s3io():
    """One S3 client per thread, made from the applied options (None when none are: Beam's FileSystems then).

    Beam's S3 filesystem makes a new boto3 session and client for every call (about 0.5 s each here, measured),
    and its client keeps the state of one download at a time: so one per thread, kept, through Beam's own
    ``S3IO`` (the class its filesystem calls)."""
    if _OPTIONS is None:
        return None
    if getattr(_CLIENTS, "options", None) != _OPTIONS:
        from apache_beam.io.aws.s3io import S3IO
        from apache_beam.options.pipeline_options import PipelineOptions

        _CLIENTS.s3io, _CLIENTS.options = S3IO(options=PipelineOptions(list(_OPTIONS.flags))), _OPTIONS
    return _CLIENTS.s3io


def check_scheme(path: ObjectPath) -> None:
    """Raise :class:`StorageError` naming the extra to install when Beam has no filesystem for ``path``'s scheme, or
    its client library is missing (Beam's GCS filesystem imports without it and fails at the first listing)."""
    import importlib.util

    from apache_beam.io.filesystems import FileSystems

    extra = EXTRAS.get(path.scheme)
    fix = f"pip install '{extra}'" if extra else "install the Beam filesystem that handles this scheme"
    try:
        FileSystems.get_filesystem(path.url)
        client = _CLIENT_MODULES.get(path.scheme)
        if client is not None and importlib.util.find_spec(client) is None:
            raise ValueError(client)
    except (ValueError, ModuleNotFoundError) as err:  # find_spec raises the latter when a parent package is missing
        raise StorageError(f"{path}: Beam has no filesystem for {path.scheme}:// in this environment; {fix}") from err


_CLIENT_MODULES = {"s3": "boto3", "gs": "google.cloud.storage"}


def remove_tree(path: StorePath) -> None:
    """Delete a folder and everything in it (every object below a prefix); nothing when it is not there."""
    if isinstance(path, Path):
        import shutil

        shutil.rmtree(path, ignore_errors=True)
        return
    keys = _LISTINGS.keys_under(path)
    if keys:
        from apache_beam.io.filesystems import FileSystems

        FileSystems.delete(keys)
    _LISTINGS.forget(path)


def move_tree(source: StorePath, target: StorePath) -> None:
    """Rename a folder (``os.replace``); in an object store, every object below the prefix is copied to the new
    prefix and deleted (on the server: no byte passes through this process)."""
    if isinstance(source, Path) and isinstance(target, Path):
        os.replace(source, target)
        return
    if not isinstance(source, ObjectPath) or not isinstance(target, ObjectPath):
        raise ValueError(f"cannot move {source} to {target}: not the same kind of store")
    keys = _LISTINGS.keys_under(source)
    if keys:
        from apache_beam.io.filesystems import FileSystems

        FileSystems.rename(keys, [target.url + key[len(source.url) :] for key in keys])
    _LISTINGS.forget(source)
    _LISTINGS.forget(target)


def at(path: str | StorePath, store: StoreOptions | None) -> StorePath:
    """:func:`location` in a worker: for a URL, the run's object-store options (carried by the step) applied first."""
    if store is not None and is_url(path):
        store.apply()
    return location(path)


def check_reachable(path: ObjectPath, *, timeout_s: float = 10.0) -> None:
    """Raise :class:`StorageError` when ``path``'s bucket cannot be used: the store unreachable, the bucket missing,
    no credentials or no permission. Beam's own calls retry an unreachable store for about 7 minutes (measured)
    before failing, so S3 is asked once here with short timeouts (a HEAD of the bucket, as the run's options
    configure Beam's client); other schemes are left to their first listing."""
    if path.scheme != "s3" or _OPTIONS is None:
        return
    import boto3
    import botocore.config
    import botocore.exceptions
    from apache_beam.options.pipeline_options import PipelineOptions, S3Options

    s3 = PipelineOptions(list(_OPTIONS.flags)).view_as(S3Options)
    config = botocore.config.Config(connect_timeout=timeout_s, read_timeout=timeout_s, retries={"max_attempts": 2})
    client = boto3.session.Session().client(
        "s3",
        endpoint_url=s3.s3_endpoint_url,
        region_name=s3.s3_region_name,
        aws_access_key_id=s3.s3_access_key_id,
        aws_secret_access_key=s3.s3_secret_access_key,
        aws_session_token=s3.s3_session_token,
        verify=s3.s3_verify,
        use_ssl=not s3.s3_disable_ssl,
        config=config,
    )
    try:
        client.head_bucket(Bucket=path.bucket)
    except botocore.exceptions.NoCredentialsError as err:
        raise StorageError(f"{path}: no AWS credentials (--s3_access_key_id, AWS_PROFILE, or an instance role)") from err
    except botocore.exceptions.ClientError as err:
        code = str(err.response.get("Error", {}).get("Code", ""))
        if code in ("404", "NoSuchBucket"):
            raise StorageError(f"{path}: bucket {path.bucket} does not exist") from err
        if code in ("403", "AccessDenied"):
            raise StorageError(f"{path}: no permission to use bucket {path.bucket} with these credentials") from err
        raise StorageError(f"{path}: {err}") from err
    except botocore.exceptions.BotoCoreError as err:  # unreachable: a wrong endpoint, no network
        raise StorageError(f"{path}: cannot reach the store ({err})") from err
