"""The sandbox against hostile student code: each misbehaviour costs only its own call."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from grading.sandbox import errors
from grading.sandbox.client import Sandbox
from grading.sandbox.forkserver import ForkedProcess, ForkServer
from grading.sandbox.isolation import bwrap_path
from grading.sandbox.limits import Limits

HOSTILE = Path(__file__).parent / "hostile" / "inference_lab_hostile.py"
LIMITS = Limits(call_timeout_s=4, memory_mb=384, max_procs=40, output_bytes=1_000_000,
                reply_bytes=4_000_000, file_size_mb=16, disk_mb=64)
ISOLATION = "bwrap" if os.environ.get("CI") else "auto"


@pytest.fixture(scope="module")
def submission(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hostile")
    (root / "inference_lab").mkdir()
    (root / "inference_lab" / "__init__.py").write_text("")
    shutil.copy(HOSTILE, root / "inference_lab" / "h.py")
    return root


@pytest.fixture(scope="module", params=["started", "forked"])
def forkserver(request: pytest.FixtureRequest):
    """None: each worker a new interpreter; else the zygote that forks them (grading/sandbox/forkserver.py)."""
    if request.param == "started":
        yield None
        return
    if bwrap_path() is None:
        pytest.skip("the fork server needs bubblewrap")
    with ForkServer(LIMITS, {"HF_TOKEN": "hf_canary"}, relays=None, isolation=ISOLATION) as server:
        yield server


@pytest.fixture(scope="module")
def box(submission: Path, forkserver: ForkServer | None):
    with Sandbox(submission, limits=LIMITS, env={"HF_TOKEN": "hf_canary"}, isolation=ISOLATION,
                 forkserver=forkserver) as sandbox:
        yield sandbox
        # each call ran in a forked worker: a failed fork would have fallen back to a new interpreter
        assert (sandbox.forkserver is not None) == (forkserver is not None)


def test_well_behaved_call_and_scrubbed_env(box: Sandbox) -> None:
    value = box.call("h.well_behaved", 5)
    assert value["x"] == 5 and value["token"] == "hf_canary"
    assert value["home"] == str(box.home)
    env = box.call("h.environment")
    assert not {k for k in env if k.lower().endswith("_proxy") and k.lower() != "no_proxy"}
    assert "127.0.0.1" in env["NO_PROXY"]


def test_not_implemented(box: Sandbox) -> None:
    with pytest.raises(errors.NotImplementedByStudent, match="not implemented: inference_lab.h.not_implemented"):
        box.call("h.not_implemented")


def test_infinite_loop_times_out_then_worker_recovers(box: Sandbox) -> None:
    started = time.monotonic()
    with pytest.raises(errors.CallTimeout, match="did not return within"):
        box.call("h.infinite_loop", timeout_s=1.0)
    assert time.monotonic() - started < 5
    assert box.call("h.well_behaved", 1)["x"] == 1


def test_fork_bomb_is_contained(box: Sandbox) -> None:
    if not box.plan or not box.plan.cgroups.pids_dir:
        pytest.skip("no pids cgroup here: fork bombs are contained by RLIMIT_NPROC only for non-root users")
    children = box.call("h.fork_bomb")
    assert children < LIMITS.max_procs
    assert box.call("h.well_behaved", 2)["x"] == 2


def test_1gb_allocation_is_stopped(box: Sandbox) -> None:
    with pytest.raises((errors.MemoryLimitExceeded, errors.StudentRaised)) as info:
        box.call("h.allocate_1gb")
    if isinstance(info.value, errors.StudentRaised):  # the RLIMIT_AS fallback raises MemoryError
        assert info.value.exc_type == "MemoryError"
    else:
        assert "384 MiB" in str(info.value)
    assert box.call("h.well_behaved", 3)["x"] == 3


def test_printing_100mb_is_stopped(box: Sandbox) -> None:
    with pytest.raises(errors.OutputLimitExceeded, match="printed"):
        box.call("h.print_100mb")
    assert box.call("h.well_behaved", 4)["x"] == 4


def test_os_exit_and_segfault_are_crashes(box: Sandbox) -> None:
    with pytest.raises(errors.WorkerCrashed, match="exited with code 3"):
        box.call("h.hard_exit")
    with pytest.raises(errors.WorkerCrashed, match="SIGSEGV"):
        box.call("h.segfault")
    assert box.call("h.well_behaved", 5)["x"] == 5


def test_sys_exit_is_an_error_not_a_crash(box: Sandbox) -> None:
    with pytest.raises(errors.StudentRaised, match="sys.exit"):
        box.call("h.soft_exit")


def test_non_json_results(box: Sandbox) -> None:
    with pytest.raises(errors.BadResult, match="not plain JSON"):
        box.call("h.non_json")
    with pytest.raises(errors.BadResult):
        box.call("h.nan_result")
    with pytest.raises(errors.BadResult, match="more than"):
        box.call("h.huge_result")


def test_file_size_limit(box: Sandbox) -> None:
    assert box.call("h.big_file").startswith("blocked")


@pytest.mark.skipif(bwrap_path() is None, reason="bubblewrap is not usable here")
def test_writing_outside_its_folder_is_blocked(box: Sandbox, tmp_path: Path) -> None:
    repo_target = Path(__file__).resolve().parent.parent / "pwned.txt"
    result = box.call("h.write_outside", str(repo_target))
    assert result.startswith("blocked") and not repo_target.exists()
    assert box.call("h.write_outside", str(box.root / "ok.txt")) == "written"


@pytest.mark.skipif(bwrap_path() is None, reason="bubblewrap is not usable here")
def test_grader_secrets_and_solution_are_hidden(box: Sandbox) -> None:
    repo = Path(__file__).resolve().parent.parent
    home = Path(os.path.expanduser("~"))
    wanted = [str(home / ".cache" / "huggingface" / "token"), str(repo / "reference" / "inference_lab" / "auth.py"),
              str(repo / "checkpoints" / "test_auth.py"), str(Path(__file__))]
    assert box.call("h.read_grader_secrets", wanted) == {}


def test_escaped_process_is_killed_on_close(submission: Path, forkserver: ForkServer | None) -> None:
    with Sandbox(submission, limits=LIMITS, isolation=ISOLATION, forkserver=forkserver) as sandbox:
        pid = sandbox.call("h.escape_process_group")
        plan = sandbox.plan
    if plan is None or not (plan.use_bwrap or plan.cgroups.pids_dir):
        pytest.skip("needs a pid namespace or a cgroup to find escaped processes")
    time.sleep(0.2)
    assert plan.cgroups.pids() == []
    if not plan.use_bwrap:  # in a pid namespace the returned pid is not a host pid
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_submission_budget(submission: Path) -> None:
    limits = Limits(call_timeout_s=5, submission_timeout_s=1.0)
    with Sandbox(submission, limits=limits, isolation=ISOLATION) as sandbox:
        with pytest.raises(errors.CallTimeout):
            sandbox.call("h.infinite_loop")
        with pytest.raises(errors.SubmissionBudgetExceeded, match="time budget"):
            sandbox.call("h.well_behaved", 1)


def test_missing_package_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(errors.SandboxUnavailable, match="no inference_lab/ package"):
        Sandbox(tmp_path)


def test_syntax_error_is_an_import_failure(tmp_path: Path) -> None:
    (tmp_path / "inference_lab").mkdir()
    (tmp_path / "inference_lab" / "__init__.py").write_text("")
    (tmp_path / "inference_lab" / "auth.py").write_text("def get_token(:\n")
    with Sandbox(tmp_path, limits=LIMITS, isolation=ISOLATION) as sandbox:
        with pytest.raises(errors.ImportFailed, match="SyntaxError"):
            sandbox.call("auth.get_token")


def test_student_sitecustomize_and_pth_are_ignored(tmp_path: Path) -> None:
    (tmp_path / "inference_lab").mkdir()
    (tmp_path / "inference_lab" / "__init__.py").write_text("")
    shutil.copy(HOSTILE, tmp_path / "inference_lab" / "h.py")
    marker = tmp_path / "inference_lab" / "MARKER"
    hook = f"open({str(marker)!r}, 'w').write('ran')\n"
    for name in ("sitecustomize.py", "usercustomize.py"):
        (tmp_path / name).write_text(hook)
        (tmp_path / "inference_lab" / name).write_text(hook)
    (tmp_path / "evil.pth").write_text(f"import os; {hook}")
    with Sandbox(tmp_path, limits=LIMITS, isolation=ISOLATION) as sandbox:
        assert sandbox.call("h.well_behaved", 1)["x"] == 1
        assert not (sandbox.root / "inference_lab" / "MARKER").exists()
    assert not marker.exists()


def test_watched_secret_found_in_any_amount_of_output(submission: Path) -> None:
    (submission / "inference_lab" / "leaky.py").write_text(
        "def leak(secret):\n"
        "    print('x' * 300_000)\n"              # far beyond the kept tail
        "    print('token is', secret)\n"
        "    print('y' * 200_000, end='')\n"
        "    print(secret[3:] + 'z' * 70_000)\n"   # inside an over-long line
        "    return True\n")
    limits = Limits(call_timeout_s=10, output_bytes=5_000_000)
    with Sandbox(submission, limits=limits, isolation=ISOLATION, watch_output=("hf_SECRET123", "SECRET123")) as box:
        start = box.output_mark()
        assert box.watched_lines(since=start) == []
        assert box.call("leaky.leak", "hf_SECRET123") is True
        box.output_mark()
        lines = box.watched_lines(since=start)
        assert any(line.startswith("token is hf_SECRET123") for line in lines)
        assert any("SECRET123" in line and line.startswith("y") for line in lines)
        assert len(lines) == 2


def test_filling_its_folder_is_stopped(box: Sandbox) -> None:
    """Many files under the per-file limit: the folder's growth is capped (grading/sandbox/diskwatch.py)."""
    with pytest.raises(errors.DiskLimitExceeded, match="used more than 64 MiB of disk"):
        box.call("h.fill_folder", 400, timeout_s=30)
    assert box.call("h.well_behaved", 2)["x"] == 2


def test_links_out_and_special_files_are_left_out_of_the_copy(tmp_path: Path) -> None:
    root = tmp_path / "sub"
    (root / "inference_lab").mkdir(parents=True)
    (root / "inference_lab" / "__init__.py").write_text("")
    (root / "inference_lab" / "stolen.py").symlink_to("/etc/hostname")
    (root / "inference_lab" / "inside.py").symlink_to("__init__.py")
    os.mkfifo(root / "pipe.json")
    with Sandbox(root, limits=LIMITS, isolation=ISOLATION) as sandbox:
        assert not (sandbox.root / "inference_lab" / "stolen.py").exists()
        assert (sandbox.root / "inference_lab" / "inside.py").is_symlink()
        assert any("stolen.py: a link out of the submission" in d for d in sandbox.dropped), sandbox.dropped
        assert any("pipe.json: a named pipe" in d for d in sandbox.dropped), sandbox.dropped
        with pytest.raises(errors.ImportFailed, match="left out of the copy graded"):
            sandbox.call("stolen.anything")


def test_too_deep_folders_are_left_out_with_the_reason(tmp_path: Path) -> None:
    root = tmp_path / "sub"
    (root / "inference_lab").mkdir(parents=True)
    (root / "inference_lab" / "__init__.py").write_text("")
    (root / "inference_lab" / "ok.py").write_text("def f():\n    return 1\n")
    here = os.getcwd()
    os.chdir(root / "inference_lab")        # one level at a time: deeper than PATH_MAX in all
    try:
        for _ in range(30):
            os.mkdir("d" * 200)
            os.chdir("d" * 200)
    finally:
        os.chdir(here)
    with Sandbox(root, limits=LIMITS, isolation=ISOLATION) as sandbox:
        assert any("File name too long" in d for d in sandbox.dropped), sandbox.dropped
        assert sandbox.call("ok.f") == 1
