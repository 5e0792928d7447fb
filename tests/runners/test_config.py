import dataclasses

import pytest

from mmfeat.runners.config import DEFAULTS_FILE, ConfigError, load_config


@pytest.mark.parametrize("dataset", ["librispeech", "coco", "iemocap"])
def test_documented_defaults_equal_the_code_defaults(dataset):
    assert load_config(dataset, path=DEFAULTS_FILE) == load_config(dataset)


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
    assert a.to_dict()["librispeech"] == {"subsets": ()}
