"""Load a :class:`PipelineConfig` from defaults, an optional YAML file and ``--set key=value`` overrides.

Validation is strict and happens before any pipeline starts: an unknown key, a wrong type or a
bad value raises :class:`ConfigError` naming the key (e.g. ``mfcc.n_mfcc: expected an integer``).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, Union

import yaml

from mmfeat.pipelines.config import PipelineConfig

DEFAULTS_FILE = Path(__file__).with_name("defaults.yaml")  # the common sections; each dataset's is in its folder
_RESERVED = {"dataset_name", "dataset"}


class ConfigError(ValueError):
    """An invalid configuration; the message starts with the dotted key at fault."""


def default_config_text() -> str:
    """The default configuration with every key documented (``mmfeat config``): the header and the common
    sections of ``defaults.yaml``, each dataset's section (``pipelines/datasets/<name>/defaults.yaml``) first."""
    from mmfeat.pipelines.registry import DOCUMENTED_DEFAULTS

    header, _, common = DEFAULTS_FILE.read_text(encoding="utf-8").partition("\n\n")
    sections = [path.read_text(encoding="utf-8").rstrip() + "\n\n" for path in DOCUMENTED_DEFAULTS.values()]
    return header + "\n\n" + "".join(sections) + common


def common_sections() -> dict[str, type]:
    hints = typing.get_type_hints(PipelineConfig)
    return {f.name: hints[f.name] for f in dataclasses.fields(PipelineConfig) if f.name not in _RESERVED}


def _convert(value: Any, annotation: Any, key: str) -> Any:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _convert(value, arg, key)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{key}: {value!r} does not fit {annotation}")
    if origin is Literal:
        if value in args:
            return value
        raise ConfigError(f"{key}: {value!r} is not one of {', '.join(map(str, args))}")
    if dataclasses.is_dataclass(annotation):
        return from_mapping(annotation, value, key)
    if origin is tuple:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(v, args[0], f"{key}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(f"{key}: expected a list of {len(args)} values, got {value!r}")
        return tuple(_convert(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    if annotation is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    raise ConfigError(f"{key}: unsupported setting type {annotation}")


def from_mapping(cls: type, data: Any, key: str) -> Any:
    """Build dataclass ``cls`` from a mapping, checking every key and value."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{key}: expected a mapping of settings, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.init]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ConfigError(f"{key}.{unknown[0]}: unknown setting (known: {', '.join(names)})")
    given = {name: _over_default(cls, name, data[name]) for name in names if name in data}
    kwargs = {name: _convert(value, hints[name], f"{key}.{name}") for name, value in given.items()}
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as err:
        raise ConfigError(f"{key}: {err}") from err


def _over_default(cls: type, name: str, value: Any) -> Any:
    """A nested section's settings merged over the field's default section: ``encode.image.max_batch_size=16``
    changes that one setting and keeps the default ``encode.image.name``, instead of building a section
    from that key alone (where every other setting would fall back to the bare class's, e.g. no encoder)."""
    default = _field_default(cls, name)
    if not (isinstance(value, Mapping) and dataclasses.is_dataclass(default)):
        return value
    return _merged(dataclasses.asdict(default), value)


def _field_default(cls: type, name: str) -> Any:
    field = next(f for f in dataclasses.fields(cls) if f.name == name)
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return None if field.default is dataclasses.MISSING else field.default


def _merged(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in update.items():
        out[key] = _merged(out[key], value) if isinstance(value, Mapping) and isinstance(out.get(key), Mapping) else value
    return out


def apply_override(data: dict[str, Any], override: str) -> None:
    """Apply one ``a.b.c=value`` (value parsed as YAML: numbers, true/false, [lists], null)."""
    dotted, sep, raw = override.partition("=")
    if not sep or not dotted.strip():
        raise ConfigError(f"--set {override!r}: expected key=value, e.g. mfcc.n_mfcc=13")
    parts = dotted.strip().split(".")
    node = data
    for i, part in enumerate(parts[:-1]):
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"{'.'.join(parts[: i + 1])}: is a value, not a section")
    try:
        node[parts[-1]] = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as err:
        raise ConfigError(f"{dotted}: cannot parse value {raw!r}: {err}") from err


def load_config(dataset: str, *, path: str | Path | None = None, overrides: Sequence[str] = ()) -> PipelineConfig:
    """Defaults ← YAML file ← overrides, validated into a :class:`PipelineConfig` for ``dataset``."""
    from mmfeat.pipelines.registry import DATASETS

    if dataset not in DATASETS:
        raise ConfigError(f"dataset: unknown dataset {dataset!r} (known: {', '.join(sorted(DATASETS))})")
    data: dict[str, Any] = {}
    if path is not None:
        try:
            loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as err:
            raise ConfigError(f"--config {path}: {err}") from err
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"--config {path}: the top level must be a mapping of sections")
        data = loaded or {}
    for override in overrides:
        apply_override(data, override)
    sections = common_sections()
    unknown = sorted(set(data) - set(sections) - set(DATASETS))
    if unknown:
        raise ConfigError(f"{unknown[0]}: unknown section (known: {', '.join([*sections, *sorted(DATASETS)])})")
    for name, spec in DATASETS.items():  # other datasets' sections are checked too: one file can serve all
        if name in data and name != dataset:
            from_mapping(spec.config_type, data[name], name)
    resolved = {name: from_mapping(cls, data.get(name), name) for name, cls in sections.items()}
    own = from_mapping(DATASETS[dataset].config_type, data.get(dataset), dataset)
    return PipelineConfig(dataset_name=dataset, dataset=own, **resolved)
