"""Workers forked by a submission's zygote (grading/sandbox/forkserver.py) are as fresh and as confined
as workers started one by one; tests/test_sandbox.py runs its hostile calls against both kinds."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from grading.sandbox import errors
from grading.sandbox.client import Sandbox
from grading.sandbox.forkserver import ForkedProcess, ForkServer
from grading.sandbox.isolation import bwrap_path
from grading.sandbox.limits import Limits

pytestmark = pytest.mark.skipif(bwrap_path() is None, reason="the fork server needs bubblewrap")

ISOLATION = "bwrap" if os.environ.get("CI") else "auto"
LIMITS = Limits(call_timeout_s=10, cpu_s=120, memory_mb=512)
STUDENT = '''
import os, resource, signal, sys, time

CALLS = 0


def state():
    global CALLS
    CALLS += 1
    return {"calls": CALLS, "openai_loaded": "openai" in sys.modules, "home": os.environ["HOME"],
            "cpu_limit": resource.getrlimit(resource.RLIMIT_CPU)[0], "cwd": os.getcwd()}


def hub(zygote_home):
    preloaded = "huggingface_hub.constants" in sys.modules
    from huggingface_hub import constants, get_token
    os.makedirs(os.environ["HF_HOME"], exist_ok=True)
    with open(os.path.join(os.environ["HF_HOME"], "token"), "w") as handle:
        handle.write("hf_" + os.path.basename(os.environ["HOME"]).replace("-", "").ljust(34, "x"))
    stale = [f"{name}.{key}" for name, module in list(sys.modules.items()) if name.startswith("huggingface_hub")
             for key, value in vars(module).items() if isinstance(value, str) and zygote_home in value]
    return {"preloaded": preloaded, "token_path": constants.HF_TOKEN_PATH, "token": get_token(), "stale": stale}


def kill_zygote():
    os.kill(os.getppid(), signal.SIGKILL)
    time.sleep(30)
'''


@pytest.fixture
def submission(tmp_path: Path) -> Path:
    (tmp_path / "inference_lab").mkdir()
    (tmp_path / "inference_lab" / "__init__.py").write_text("")
    (tmp_path / "inference_lab" / "z.py").write_text(STUDENT)
    return tmp_path


def test_each_worker_is_a_fresh_fork_with_its_own_home_and_limits(submission: Path) -> None:
    with ForkServer(LIMITS, {}, relays=None, isolation=ISOLATION) as server:
        seen = []
        for cpu_s in (60, 90):
            limits = Limits(call_timeout_s=10, cpu_s=cpu_s, memory_mb=512)
            with Sandbox(submission, limits=limits, isolation=ISOLATION, forkserver=server) as box:
                first, second = box.call("z.state"), box.call("z.state")
                assert isinstance(box.proc, ForkedProcess)
                if box.plan is not None and box.plan.cgroups.controllers:
                    assert box.proc.pid in box.plan.cgroups.pids()   # moved into its sandbox's cgroups
                assert first["openai_loaded"], "the zygote's preloaded client library is there"
                assert (first["calls"], second["calls"]) == (1, 2)   # one worker serves a sandbox's calls
                assert first["home"] == str(box.home) and first["cwd"] == str(box.root)
                assert first["cpu_limit"] == cpu_s
                seen.append(first)
                hub = box.call("z.hub", str(server.home))
                assert hub["preloaded"], "huggingface_hub is preloaded by the zygote"
                # ... and follows this worker's home, not the zygote's it was imported with
                assert hub["token_path"] == str(box.home / ".cache" / "huggingface" / "token"), hub
                assert hub["token"].startswith("hf_" + box.home.name.replace("-", "")) and not hub["stale"], hub
        assert [s["calls"] for s in seen] == [1, 1], "a new sandbox's worker has none of the last one's state"
        assert seen[0]["home"] != seen[1]["home"]
        assert server.starts == 1


def test_a_killed_zygote_costs_only_the_call_that_killed_it(submission: Path) -> None:
    with ForkServer(LIMITS, {}, relays=None, isolation=ISOLATION) as server:
        with Sandbox(submission, limits=LIMITS, isolation=ISOLATION, forkserver=server) as box:
            with pytest.raises(errors.WorkerCrashed):
                box.call("z.kill_zygote")
            assert box.call("z.state")["calls"] == 1        # a new worker, from a new zygote
            assert box.forkserver is server and server.starts == 2


def test_without_a_sandbox_for_the_zygote_workers_start_the_usual_way(submission: Path) -> None:
    with ForkServer(LIMITS, {}, relays=None, isolation=ISOLATION) as server:
        with Sandbox(submission, limits=LIMITS, isolation="process", forkserver=server) as box:
            state = box.call("z.state")
            assert not isinstance(box.proc, ForkedProcess) and box.forkserver is None
            assert state["calls"] == 1


def test_a_worker_whose_environment_differs_more_than_its_home_is_started(submission: Path) -> None:
    # the zygote imported ollama and huggingface_hub, which read OLLAMA_HOST and HF_* at import
    with ForkServer(LIMITS, {"OLLAMA_HOST": "http://127.0.0.1:11434"}, relays=None, isolation=ISOLATION) as server:
        with Sandbox(submission, limits=LIMITS, isolation=ISOLATION, forkserver=server,
                     env={"OLLAMA_HOST": "http://127.0.0.1:11435"}) as box:
            assert box.call("z.state")["calls"] == 1
            assert not isinstance(box.proc, ForkedProcess) and box.forkserver is None
        with Sandbox(submission, limits=LIMITS, isolation=ISOLATION, forkserver=server,
                     env={"OLLAMA_HOST": "http://127.0.0.1:11434"}) as box:
            assert box.call("z.state")["calls"] == 1 and isinstance(box.proc, ForkedProcess)
