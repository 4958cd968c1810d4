"""The stall watch that replaces a wall-clock limit on the smoke pipeline (tests/watch.py)."""

from __future__ import annotations

import sys
import time

import pytest

from tests.watch import run_watched


def test_a_command_that_stops_making_progress_fails_with_its_last_output(tmp_path):
    start = time.time()
    with pytest.raises(pytest.fail.Exception, match=r"made no progress for 2 s[\s\S]*about to hang"):
        run_watched([sys.executable, "-c", "import sys, time; print('about to hang', file=sys.stderr, flush=True); "
                     "time.sleep(60)"], cwd=tmp_path, stall_s=2, poll_s=0.2)
    assert time.time() - start < 30  # killed, not waited for


def test_a_slow_command_that_keeps_writing_outputs_is_never_cut(tmp_path):
    (tmp_path / "results").mkdir()
    code = ("import time, pathlib\nfor i in range(8):\n    time.sleep(0.5)\n"
            "    pathlib.Path('results', f'{i}.txt').write_text('x')\nprint('done')")
    result = run_watched([sys.executable, "-c", code], cwd=tmp_path, watch=["results"], stall_s=2, poll_s=0.2)
    assert result.returncode == 0 and result.stdout.strip() == "done"  # ran 4 s > stall_s
