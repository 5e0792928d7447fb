"""What worker processes and native libraries print to descriptor 2 reaches the terminal without Beam's benign
notices, and above the progress bar, not inside it."""

import re
import subprocess
import sys

SCRIPT = """
import os, sys, time
from tqdm import tqdm
from mmfeat.runners.worker_console import filtered_worker_console
with filtered_worker_console():
    bar = tqdm(total=10, desc="coco", file=sys.stderr)
    bar.update(3)
    os.write(2, b"[19:41:23] video_reader.cc:83: ERROR opening: broken.avi\\n")  # as decord's C++ logs it
    os.write(2, b"INFO:root:Logging handler created.\\n")  # a benign Beam notice
    time.sleep(0.5)
    bar.update(7)
    bar.close()
"""


def test_a_native_log_line_is_written_above_the_bar_and_benign_notices_are_left_out():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60).stderr
    segments = re.split(r"[\r\n]", out)
    assert any(s.startswith("[19:41:23] video_reader.cc:83: ERROR") for s in segments), out  # on a line of its own
    assert "Logging handler created" not in out and "10/10" in out
