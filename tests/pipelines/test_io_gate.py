"""An interrupted run stops writing before its output is put in order: writes under way finish, later ones are refused."""

import threading
import time

import pytest

from mmfeat.pipelines import io


def test_close_writes_waits_for_writes_under_way_and_refuses_later_ones(tmp_path, monkeypatch):
    monkeypatch.setattr(io, "_CLOSED", False)
    monkeypatch.setattr(io, "_WRITING", {})
    slow_started, release = threading.Event(), threading.Event()
    real_replace = io.os.replace

    def slow_replace(src, dst):
        slow_started.set()
        release.wait(5)
        real_replace(src, dst)

    monkeypatch.setattr(io.os, "replace", slow_replace)
    writer = threading.Thread(target=io.write_text_atomically, args=(tmp_path / "a.json", "{}"))
    writer.start()
    assert slow_started.wait(5)
    assert io.close_writes(timeout_s=0.2) is False  # the other thread's write is still under way
    threading.Timer(0.2, release.set).start()
    started = time.monotonic()
    assert io.close_writes(timeout_s=5) is True and time.monotonic() - started >= 0.1
    writer.join(5)
    assert (tmp_path / "a.json").read_text() == "{}"
    with pytest.raises(io.WritesClosed):
        io.write_text_atomically(tmp_path / "b.json", "{}")
    assert not (tmp_path / "b.json").exists()
