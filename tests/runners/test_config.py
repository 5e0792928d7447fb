import dataclasses

import pytest

from mmfeat.pipelines.registry import DATASETS
from mmfeat.runners.config import ConfigError, default_config_text, load_config


@pytest.mark.parametrize("dataset", sorted(DATASETS))
def test_documented_defaults_equal_the_code_defaults(dataset, tmp_path):
    """``mmfeat config`` (defaults.yaml's common sections and each dataset's own) loads as the code's defaults."""
    import yaml

    documented = tmp_path / "defaults.yaml"
    documented.write_text(default_config_text())
    assert dataset in yaml.safe_load(documented.read_text())  # every dataset's section is documented
    assert load_config(dataset, path=documented) == load_config(dataset)
    code = load_config(dataset).to_dict()
    shown = {name: section for name, section in yaml.safe_load(documented.read_text()).items() if name in code}
    assert dotted_keys(shown) == dotted_keys(code)  # every setting is documented, and nothing else is


def dotted_keys(tree: dict, prefix: str = "") -> set[str]:
    keys = set()
    for key, value in tree.items():
        keys |= dotted_keys(value, f"{prefix}{key}.") if isinstance(value, dict) else {prefix + key}
    return keys


def test_image_and_encoder_settings_are_validated_with_their_key():
    with pytest.raises(ConfigError, match=r"^augment\.image\.flip: flip.p must be in \[0, 1\]"):
        load_config("coco", overrides=["augment.image.flip.p=2"])
    with pytest.raises(ConfigError, match=r"^encode\.image\.device: 'tpu' is not one of"):
        load_config("coco", overrides=["encode.image.device=tpu"])
    assert load_config("coco", overrides=["encode.image.name=null", "coco.splits=val2017"]).encode.image.name is None


def test_yaml_file_then_overrides(tmp_path):
    cfg_file = tmp_path / "cfg.yaml"
    cfg_file.write_text("mfcc:\n  n_mfcc: 13\naudio:\n  sample_rate: 8000\n")
    config = load_config(
        "librispeech",
        path=cfg_file,
        overrides=[
            "mfcc.n_mfcc=20",
            "librispeech.subsets=train-clean-100,dev-clean",
            "augment.audio.noise.snr_db=[5, 15]",
            "vocab.max_size=null",
        ],
    )
    assert config.mfcc.n_mfcc == 20 and config.audio.sample_rate == 8000
    assert config.dataset.subsets == ("train-clean-100", "dev-clean")
    assert config.augment.audio.noise.snr_db == (5.0, 15.0)
    assert config.vocab.max_size is None


@pytest.mark.parametrize(
    "override,message",
    [
        ("mfcc.n_mfc=13", r"mfcc\.n_mfc: unknown setting"),
        ("mfcc.n_mfcc=many", r"mfcc\.n_mfcc: expected an integer"),
        ("mfcc.n_mfcc=true", r"mfcc\.n_mfcc: expected an integer"),
        ("audio.normalize=loud", r"audio\.normalize: 'loud' is not one of"),
        ("audio.min_duration_s=50", r"audio: need 0 <= min_duration_s < max_duration_s"),
        ("augment.audio.gain.db=[1]", r"augment\.audio\.gain\.db: expected a list of 2 values"),
        ("nonsense.key=1", r"nonsense: unknown section"),
        ("mfcc=3", r"mfcc: expected a mapping"),
        ("no_equals_sign", r"expected key=value"),
    ],
)
def test_invalid_config_names_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config("librispeech", overrides=[override])


def test_bad_yaml_and_unknown_dataset(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config("librispeech", path=bad)
    with pytest.raises(ConfigError, match="unknown dataset"):
        load_config("imagenet")


def test_config_digest_is_stable_and_sensitive():
    a, b = load_config("librispeech"), load_config("librispeech")
    assert a.digest() == b.digest()
    assert dataclasses.replace(a, mfcc=dataclasses.replace(a.mfcc, n_mfcc=13)).digest() != a.digest()
    assert load_config("librispeech", overrides=["execution.read_ahead=0"]).digest() == a.digest()  # changes no output
    run_only = ["encode.image.max_batch_size=8", "encode.image.device=cpu", "encode.text.min_batch_size=2",
                "execution.max_error_fraction=0.5"]  # fmt: skip
    assert load_config("librispeech", overrides=run_only).digest() == a.digest()  # where and how it runs, not what
    assert load_config("librispeech", overrides=["encode.image.dtype=float16"]).digest() != a.digest()
    assert load_config("librispeech", overrides=["encode.text.name=minilm_l6"]).digest() != a.digest()
    assert a.to_dict()["librispeech"] == {"subsets": ()}


def _leaf_settings(value, prefix=""):
    """(dotted key, value) of every leaf setting of a config section, as plain data."""
    import dataclasses

    if dataclasses.is_dataclass(value):
        for field in dataclasses.fields(value):
            yield from _leaf_settings(getattr(value, field.name), f"{prefix}.{field.name}" if prefix else field.name)
    else:
        yield prefix, value


@pytest.mark.parametrize("dataset", ["librispeech", "coco", "iemocap"])
def test_every_setting_can_be_given_alone_without_changing_any_other(dataset):
    """A partial section merges over the defaults: --set encode.image.max_batch_size=16 keeps encode.image.name."""
    import json

    from mmfeat.runners.config import load_config

    default = load_config(dataset)
    sections = {name: getattr(default, name) for name in ("audio", "mfcc", "text", "vocab", "image", "video", "augment",
                                                          "encode", "output", "execution")}  # fmt: skip
    sections[dataset] = default.dataset
    keys = [(f"{name}.{key}", value) for name, section in sections.items() for key, value in _leaf_settings(section)]
    assert len(keys) > 80
    for key, value in keys:
        plain = list(value) if isinstance(value, tuple) else value
        assert load_config(dataset, overrides=[f"{key}={json.dumps(plain)}"]) == default, key
    changed = load_config(dataset, overrides=["encode.image.max_batch_size=16"])
    assert changed.encode.image.name == default.encode.image.name and changed.encode.image.max_batch_size == 16


def test_a_partial_section_in_a_config_file_keeps_the_other_defaults(tmp_path):
    from mmfeat.runners.config import load_config

    (tmp_path / "c.yaml").write_text("encode:\n  image:\n    max_batch_size: 8\naugment:\n  image:\n    flip:\n      p: 0.0\n")
    config = load_config("coco", path=tmp_path / "c.yaml")
    assert config.encode.image.name == "efficientnet_lite0" and config.encode.image.max_batch_size == 8
    default = load_config("coco").augment.image
    assert config.augment.image.flip.p == 0.0 and config.augment.image.crop == default.crop


def test_the_set_options_the_readme_and_docs_show_are_accepted():
    import re
    from pathlib import Path

    from mmfeat.runners.config import load_config

    root = Path(__file__).resolve().parents[2]
    texts = [root / "README.md", *sorted((root / "docs").rglob("*.md"))]
    settings = {m for path in texts if path.is_file() for m in re.findall(r"--set ([a-z_]+\.[a-z_.]+=[^\s`]+)", path.read_text())}
    assert len(settings) > 10
    for setting in sorted(settings):
        if "<" in setting or "PATH" in setting or "model.pt" in setting or "=/" in setting or setting.startswith("section."):
            continue  # placeholders and files of the user's
        section = setting.split(".")[0]
        load_config(section if section in ("iemocap", "coco") else "iemocap", overrides=[setting])
