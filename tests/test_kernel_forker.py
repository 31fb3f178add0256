"""Notebook kernels forked by grading/sandbox/kernel_forker.py behave as started ones do, and never hold
the worker's pipes. The runner runs in a fresh single-threaded Python here, as in a worker."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

RUNNER = r'''
import json, os, sys, time
from pathlib import Path
from grading.sandbox import notebooks
root, fork = Path(sys.argv[1]), sys.argv[2] != "start"
if sys.argv[2] == "fork-preloaded":   # as in a forked worker: a library that reads the environment at import
    import huggingface_hub.inference._client
rpc_r, rpc_w = os.pipe()                     # stands for the worker's reply pipe
(root / "pipe.txt").write_text(os.readlink(f"/proc/self/fd/{rpc_w}"))   # "pipe:[inode]"
result = notebooks.run_request(root, {"names": ["k.ipynb"], "cell_timeout_s": 3, "notebook_timeout_s": 60,
                                      "fork_kernels": fork})
pid = int((root / "kernel.pid").read_text())


def running(pid):   # a zombie has ended (its parent reaps it when it gets round to it)
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


for _ in range(50):   # what stops a kernel may take a moment (a signal, a closed lifeline)
    if not running(pid):
        break
    time.sleep(0.1)
alive = running(pid)
print(json.dumps({"result": result, "kernel_alive_after": alive}))
'''
CELLS = (
    "import os, sys\nopen('kernel.pid', 'w').write(str(os.getpid()))\n"
    "print('launcher' if 'ipykernel_launcher' in open('/proc/self/cmdline').read() else 'forked')",
    "pipe = open('pipe.txt').read()\nheld = []\nfor fd in os.listdir('/proc/self/fd'):\n"
    "    try:\n        held.append(os.readlink('/proc/self/fd/' + fd))\n    except OSError:\n        pass\n"
    "print('holds it' if pipe in held else 'not held')",
    "print('inference_lab' in sys.modules, os.getcwd() == os.path.abspath('.'))",
    "import time\ntime.sleep(30)",
)


@pytest.mark.parametrize("mode", ["fork", "fork-preloaded", "start"])
def test_kernel_is_fresh_blind_to_worker_pipes_and_stopped(tmp_path: Path, mode: str) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in CELLS]
    nbformat.write(nb, str(tmp_path / "k.ipynb"))
    done = subprocess.run([sys.executable, "-c", RUNNER, str(tmp_path), mode], capture_output=True, text=True,
                          timeout=120, cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    (summary,) = report["result"]["notebooks"]
    texts = [" ".join(o.get("text", "") for o in cell["outputs"]).strip() for cell in summary["cells"]]
    # fork-preloaded: what jupyter_client adds to the kernel's environment does not stop the fork
    assert texts[0] == ("launcher" if mode == "start" else "forked")
    assert texts[1] == "not held", "a kernel must not reach the worker's reply pipe"
    assert texts[2] == "False True"
    assert summary["cells"][3]["status"] == "timeout" and "within 3 s" in summary["message"]
    if mode != "start":   # its lifeline closed with the stub jupyter_client killed (a started kernel that
        # hangs in a cell may outlive the run here; in a worker its cgroup is killed with the sandbox)
        assert report["kernel_alive_after"] is False, "the kernel of a finished notebook is stopped"
