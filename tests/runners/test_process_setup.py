"""The command's own process setup (runners/process_setup.py): only thinc is refused torch, only there."""

import subprocess
import sys

import pytest

from mmfeat.runners.process_setup import NoTorchForThinc


def test_only_thinc_compat_is_refused_torch():
    finder = NoTorchForThinc()
    assert finder.find_spec("torch") is None  # any other importer: left to the usual finders
    assert finder.find_spec("numpy") is None
    with pytest.raises(ModuleNotFoundError, match="not needed by spaCy"):
        exec("finder.find_spec('torch')", {"__name__": "thinc.compat", "finder": finder})


def test_the_command_process_tokenises_without_torch_and_torch_still_imports_afterwards():
    code = (
        "import sys\n"
        "from mmfeat.runners.process_setup import set_up_command_process\n"
        "set_up_command_process()\n"
        "from mmfeat.extractors.text import TextConfig, Tokenizer\n"
        "tokens = Tokenizer(TextConfig()).tokenize(\"it's fine, isn't it?\")\n"
        "import thinc.compat\n"
        "assert 'torch' not in sys.modules and not thinc.compat.has_torch, 'thinc imported torch'\n"
        "import torch\n"
        "print(tokens, torch.ones(2).sum().item())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "['it', \"'s\", 'fine', ',', 'is', \"n't\", 'it', '?'] 2.0"


def test_importing_mmfeat_and_its_command_module_changes_nothing_in_the_process():
    code = (
        "import sys, gc\n"
        "import apache_beam as beam\n"
        "from mmfeat.pipelines.plan import plan_run\n"
        "from mmfeat.runners import cli, config\n"
        "assert not any(type(f).__name__ == 'NoTorchForThinc' for f in sys.meta_path)\n"
        "from apache_beam.transforms import userstate\n"
        "assert userstate.get_dofn_specs.__module__ == 'apache_beam.transforms.userstate'\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]
