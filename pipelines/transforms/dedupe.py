"""Drop duplicate examples after the shards are written, and report cross-split leakage.

Duplicates can only be known once every example is hashed, and hashing needs the decode, so
deciding before the heavy stages would mean decoding twice or holding decoded images across a
global barrier. Instead the writer reports each example's (content, perceptual) hashes with its
shard; :func:`extractors.dedupe.find_duplicates` runs once over those light records; and only the
shards that hold a duplicate are rewritten without it, the duplicate going to that shard's
rejects with the id it copies. Shards without duplicates are not touched.
"""

from __future__ import annotations

import dataclasses
from collections import Counter, defaultdict
from typing import Any

import apache_beam as beam
import pyarrow as pa
import pyarrow.compute as pc

from mmfeat.extractors.dedupe import DuplicateReport, Fingerprint, Match, find_duplicates
from mmfeat.pipelines.config import OutputConfig
from mmfeat.pipelines.io import write_bytes_atomically, write_parquet_atomically, write_text_atomically
from mmfeat.pipelines.storage import at, store_options
from mmfeat.pipelines.transforms.write import ShardResult, reject_row
from mmfeat.schemas.fields import REJECTS_SCHEMA, rows_to_table
from mmfeat.schemas.layout import marker_file, rejects_file
from mmfeat.schemas.records import Reject
from mmfeat.schemas.rejects import read_rejects, rejects_jsonl
from mmfeat.schemas.stats import StatsSpec, shard_statistics
from mmfeat.schemas.tensors import read_parquet

STAGE = "deduplicate"
REASONS = {"exact": "duplicate_image", "near": "near_duplicate_image"}


@dataclasses.dataclass(frozen=True)
class DedupePlan:
    """Per shard, the examples to drop; and the cross-split matches for the manifest."""

    drops: dict[str, tuple[Match, ...]]
    leakage: tuple[Match, ...]


def plan_deduplication(results: list[ShardResult], *, near_distance: int | None) -> DedupePlan:
    shard_of: dict[tuple[str, str], str] = {}
    prints = []
    for result in results:
        for sample_id, sha, phash in result.fingerprints:
            shard_of[(result.split, sample_id)] = result.name
            prints.append(Fingerprint(result.split, sample_id, sha, phash))
    report: DuplicateReport = find_duplicates(prints, near_distance=near_distance)
    drops: dict[str, list[Match]] = defaultdict(list)
    for match in report.dropped:
        drops[shard_of[(match.split, match.sample_id)]].append(match)
    return DedupePlan(drops={k: tuple(v) for k, v in drops.items()}, leakage=report.leakage)


def leakage_records(plan: DedupePlan) -> list[dict[str, Any]]:
    return [dataclasses.asdict(m) for m in plan.leakage]


class PruneShard(beam.DoFn):
    """Rewrite one shard without its duplicates (rows out, rejects in); other shards pass through."""

    def __init__(self, dataset_dir: str, config: OutputConfig, stats: StatsSpec | None = None) -> None:
        super().__init__()
        self.dataset_path = dataset_dir
        self.config = config
        self.stats = stats
        self.store = store_options()  # an output in a bucket: the workers' clients are made from these

    def setup(self) -> None:
        self.dataset_dir = at(self.dataset_path, self.store)

    def process(self, result: ShardResult, plan: DedupePlan) -> Any:
        """Idempotent: an earlier run killed half-way through pruning this shard (its rejects, or also its data,
        already rewritten; its marker not yet) leaves what this step would write, and the same is written again."""
        drops = plan.drops.get(result.name, ())
        if not drops:
            yield dataclasses.replace(result, fingerprints=())
            return
        dropped = {m.sample_id: m for m in drops}
        data_file = self.dataset_dir / result.path
        table = read_parquet(data_file) if data_file.is_file() else None  # gone: an earlier run dropped every row
        mask = pc.is_in(table["sample_id"], value_set=pa.array(sorted(dropped))) if table is not None else None
        rejects_path = result.rejects_path or rejects_file(result.name)
        old = read_rejects(self.dataset_dir / rejects_path) if (self.dataset_dir / rejects_path).is_file() else None
        sources = _dropped_sources(table, mask, old)
        new_rejects = [_reject_of(match, result.split, sources[match.sample_id]) for match in drops]
        # 1. the rejects (with the dropped examples, whose source paths they keep), 2. the data, 3. the marker
        earlier = REJECTS_SCHEMA.empty_table() if old is None else old.filter(pc.not_equal(old["stage"], STAGE))
        merged = pa.concat_tables([earlier, rows_to_table([reject_row(r) for r in new_rejects], REJECTS_SCHEMA)])
        merged = merged.sort_by([("sample_id", "ascending"), ("view", "ascending")])
        write_bytes_atomically(self.dataset_dir / rejects_path, rejects_jsonl(merged.to_pylist()))
        kept = table.filter(pc.invert(mask)) if table is not None else None
        path, digest = result.path, None
        if kept is not None and kept.num_rows:
            digest = write_parquet_atomically(kept, data_file, self.config)
        else:
            data_file.unlink(missing_ok=True)
            path = None
        reasons = Counter(result.rejected_by_reason)
        reasons.update(r.reason for r in new_rejects)
        pruned = dataclasses.replace(
            result,
            path=path,
            rows=kept.num_rows if kept is not None else 0,
            written=result.written - len(dropped),
            rejected=result.rejected + len(dropped),
            rejected_by_reason=dict(sorted(reasons.items())),
            rejects_path=rejects_path,
            reject_rows=result.reject_rows + len(new_rejects),
            fingerprints=tuple(f for f in result.fingerprints if f[0] not in dropped),  # kept in the marker, for a resume
            stats=shard_statistics(kept, self.stats) if self.stats is not None and kept is not None and kept.num_rows else None,
            bytes=digest.bytes if digest else 0,
            sha256=digest.sha256 if digest else None,
        )
        write_text_atomically(self.dataset_dir / marker_file(result.name), pruned.marker())
        yield dataclasses.replace(pruned, fingerprints=())


def _dropped_sources(table: pa.Table | None, mask: Any, rejects: pa.Table | None) -> dict[str, str]:
    """Source paths of the dropped examples: from their rows, or, where an earlier run already removed the rows,
    from the dedupe rejects it wrote first."""
    sources: dict[str, str] = {}
    if rejects is not None:
        earlier = rejects.filter(pc.equal(rejects["stage"], STAGE))
        sources.update(zip(earlier["sample_id"].to_pylist(), earlier["source_path"].to_pylist()))
    if table is not None:
        removed = table.filter(mask)
        sources.update(zip(removed["sample_id"].to_pylist(), removed["source_path"].to_pylist()))
    return sources


def _reject_of(match: Match, split: str, source_path: str) -> Reject:
    if match.kind == "exact":
        detail = f"same bytes as {match.of_sample_id} (kept)"
    else:
        detail = f"near-duplicate of {match.of_sample_id} (kept): perceptual hashes {match.distance} bits apart"
    return Reject(match.sample_id, split, source_path, STAGE, REASONS[match.kind], detail)


class DropDuplicates(beam.PTransform):
    """Shard results (with fingerprints) → (pruned shard results, leakage list as a singleton)."""

    def __init__(
        self, dataset_dir: str, config: OutputConfig, *, near_distance: int | None, stats: StatsSpec | None = None
    ) -> None:
        super().__init__()
        self.dataset_dir = dataset_dir
        self.config = config
        self.near_distance = near_distance
        self.stats = stats

    def expand(self, results: beam.PCollection):  # (results, leakage); no annotation: Beam reads it as a type hint
        plan = (
            results
            | "GatherFingerprints" >> beam.combiners.ToList()
            | "FindDuplicates" >> beam.Map(plan_deduplication, near_distance=self.near_distance)
        )
        prune = PruneShard(self.dataset_dir, self.config, self.stats)
        pruned = results | "Prune" >> beam.ParDo(prune, plan=beam.pvalue.AsSingleton(plan))
        return pruned, plan | "Leakage" >> beam.Map(leakage_records)
