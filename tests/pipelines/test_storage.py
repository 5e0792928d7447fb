"""ObjectPath: pathlib's interface over an object store (moto's S3 server on loopback)."""

from pathlib import Path

import pytest

from mmfeat.pipelines.storage import ObjectPath, forget_listings, is_url, location

ODD_KEYS = ["a/b/c.flac", "a/b/c.trans.txt", "a/x [1]*?.txt", "a/ü é/ß.txt", "a/d/deep/er.bin", "top.txt"]


@pytest.fixture(autouse=True)
def s3_options(s3):
    """The server's flags, applied again for each test (an in-process run of another test may have changed them)."""
    from mmfeat.pipelines.storage import use_object_stores

    use_object_stores(s3.beam_flags)


@pytest.fixture(scope="module")
def bucket(s3):
    url = s3.create_bucket("storage-test")
    client = s3.client()
    for key in ODD_KEYS:
        client.put_object(Bucket="storage-test", Key=key, Body=key.encode())
    forget_listings()
    return ObjectPath(url)


def test_urls_and_local_paths_are_told_apart():
    assert is_url("s3://b/x") and is_url(Path("gs://b/x")) and not is_url("/tmp/x") and not is_url("rel/x")
    assert location(Path("gs://b/x/")) == ObjectPath("gs://b/x") and location("x") == Path("x").resolve()
    path = ObjectPath("s3://b/dir/name.tar.gz")
    assert (path.name, path.stem, path.suffix, str(path.parent), str(path.parent / "y")) == (
        "name.tar.gz", "name.tar", ".gz", "s3://b/dir", "s3://b/dir/y",
    )  # fmt: skip
    with pytest.raises(TypeError, match="object store"):
        open(path, "rb").close()  # noqa: SIM115 (never a local file of that name)


def test_folders_are_prefixes_listed_once(bucket, monkeypatch):
    import mmfeat.pipelines.storage as storage

    calls = []
    real = storage._list_prefix
    monkeypatch.setattr(storage, "_list_prefix", lambda prefix: calls.append(prefix) or real(prefix))
    forget_listings()
    assert [p.name for p in bucket.iterdir()] == ["a", "top.txt"]
    a = bucket / "a"
    assert [p.name for p in a.iterdir()] == ["b", "d", "x [1]*?.txt", "ü é"]
    assert a.is_dir() and not a.is_file() and (a / "b" / "c.flac").is_file() and not (a / "b" / "c").exists()
    assert (a / "ü é" / "ß.txt").read_text() == "a/ü é/ß.txt" and (a / "x [1]*?.txt").size() == len("a/x [1]*?.txt")
    assert sorted(p.name for p in (a / "b").glob("*.txt")) == ["c.trans.txt"]
    assert sorted(p.name for p in a.rglob("*.bin")) == ["er.bin"]
    assert calls == ["s3://storage-test/"]  # every question above answered from the bucket's one listing


def test_a_prefix_with_glob_characters_lists_only_itself(bucket):
    forget_listings()
    odd = bucket / "a" / "x [1]*?.txt"
    assert odd.is_file() and [p.name for p in odd.parent.iterdir()] == ["b", "d", "x [1]*?.txt", "ü é"]


def test_writes_are_seen_and_deletes_forgotten(bucket, tmp_path):
    target = bucket / "out" / "file.bin"
    assert not target.exists()
    target.write_bytes(b"x" * 10)
    assert target.is_file() and target.read_bytes() == b"x" * 10
    local = tmp_path / "big.bin"
    local.write_bytes(bytes(range(256)) * 5000)
    (bucket / "out" / "big.bin").upload(local, chunk_bytes=100_000)
    assert (bucket / "out" / "big.bin").read_bytes() == local.read_bytes()
    target.unlink()
    assert not target.exists() and [p.name for p in (bucket / "out").iterdir()] == ["big.bin"]
    with pytest.raises(FileNotFoundError):
        target.unlink()


def test_an_object_gone_since_its_listing_is_a_reject_not_a_crash(bucket, s3):
    from mmfeat.extractors.errors import Rejected
    from mmfeat.pipelines.io import read_source_bytes

    target = bucket / "gone" / "a.flac"
    target.write_bytes(b"fLaC")
    assert target.is_file()  # listed: the listing now says it is there
    s3.client().delete_object(Bucket="storage-test", Key="gone/a.flac")
    with pytest.raises(Rejected) as rejected:
        read_source_bytes(str(target))
    assert rejected.value.reason == "file_unreadable"
