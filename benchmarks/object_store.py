"""Reading objects from an S3 server: Beam's FileSystems (a boto3 client per call), mmfeat's ObjectPath (one
client per thread, through Beam's S3IO) and a bare boto3 loop with one client, in interleaved rounds.

    python benchmarks/object_store.py [--objects 200] [--kib 100] [--rounds 3]

The server is moto's, on loopback (started here): its own per-request time is part of every figure, so the
ratios, not the absolute times, carry over to a real store.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.object_store import s3_server  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=200)
    parser.add_argument("--kib", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    from apache_beam.io.filesystems import FileSystems

    from mmfeat.pipelines.storage import ObjectPath, use_object_stores

    with s3_server() as server:
        use_object_stores(server.beam_flags)
        client = server.client()
        client.create_bucket(Bucket="bench")
        body = bytes(range(256)) * (args.kib * 4)
        keys = [f"media/{i:06d}.bin" for i in range(args.objects)]
        for key in keys:
            client.put_object(Bucket="bench", Key=key, Body=body)
        urls = [f"s3://bench/{key}" for key in keys]

        def bare() -> None:
            for key in keys:
                client.get_object(Bucket="bench", Key=key)["Body"].read()

        def beam() -> None:
            for url in urls:
                with FileSystems.open(url) as handle:
                    handle.read()

        def mmfeat() -> None:
            for url in urls:
                ObjectPath(url).read_bytes()

        ways = {"boto3, one client (bare)": bare, "Beam FileSystems.open": beam, "mmfeat ObjectPath": mmfeat}
        times: dict[str, list[float]] = {name: [] for name in ways}
        mmfeat()  # the first listing and the thread's client
        for _ in range(args.rounds):
            for name, way in ways.items():
                started = time.perf_counter()
                way()
                times[name].append((time.perf_counter() - started) / args.objects * 1000)
    base = statistics.median(times["boto3, one client (bare)"])
    print(f"{args.objects} objects of {args.kib} KiB, {args.rounds} rounds: ms per object, median (range), / bare")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"  {name:<28} {median:7.1f} ({min(values):.1f}-{max(values):.1f})   {median / base:5.2f}x")


if __name__ == "__main__":
    main()
