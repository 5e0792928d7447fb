"""An S3 server on loopback for the object-store tests: moto's standalone server, started and stopped by the tests."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


@dataclass(frozen=True)
class S3Server:
    endpoint: str

    @property
    def beam_flags(self) -> tuple[str, ...]:
        """The Beam flags that point its S3 filesystem here (what a user passes for MinIO or another S3 service)."""
        return (
            f"--s3_endpoint_url={self.endpoint}",
            f"--s3_access_key_id={CREDENTIALS['AWS_ACCESS_KEY_ID']}",
            f"--s3_secret_access_key={CREDENTIALS['AWS_SECRET_ACCESS_KEY']}",
            f"--s3_region_name={CREDENTIALS['AWS_DEFAULT_REGION']}",
        )

    def client(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=CREDENTIALS["AWS_DEFAULT_REGION"],
        )

    def create_bucket(self, name: str) -> str:
        self.client().create_bucket(Bucket=name)
        return f"s3://{name}"

    def upload_tree(self, local: Path, url: str) -> None:
        """Copy a local folder to ``url`` (``s3://bucket/prefix``), one object per file."""
        bucket, _, prefix = url.removeprefix("s3://").partition("/")
        client = self.client()
        for path in sorted(p for p in local.rglob("*") if p.is_file()):
            key = "/".join(filter(None, [prefix, path.relative_to(local).as_posix()]))
            client.upload_file(str(path), bucket, key)

    def download_tree(self, url: str, local: Path) -> list[Path]:
        bucket, _, prefix = url.removeprefix("s3://").partition("/")
        client, written = self.client(), []
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix.rstrip("/") + "/"):
            for item in page.get("Contents", []):
                target = local / item["Key"][len(prefix.rstrip("/")) + 1 :]
                target.parent.mkdir(parents=True, exist_ok=True)
                client.download_file(bucket, item["Key"], str(target))
                written.append(target)
        return written


def gcs_client_installed() -> bool:
    from importlib.util import find_spec

    try:
        return find_spec("google.cloud.storage") is not None
    except ModuleNotFoundError:  # a parent package (google.cloud) is missing
        return False


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def s3_server(port: int | None = None) -> Iterator[S3Server]:
    """moto's S3 server on 127.0.0.1 for as long as the block runs."""
    port = port or free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto's S3 server did not start on 127.0.0.1:{port}") from None
                time.sleep(0.05)
        yield S3Server(f"http://127.0.0.1:{port}")
    finally:
        process.terminate()
        process.wait(timeout=10)
