"""Where the per-submission tasks run: a local pool (default) or a Ray cluster.

Both keep at most ``jobs`` submissions in flight, hand each task to ``grade_one`` (the same code on
both) and call back on the driver's thread: ``on_start(task)`` when a task is handed out and
``on_result(task, result)`` when it is back, so only the driver writes the manifest and the files.

* local: threads, each waiting on its submission's pytest child (the child is the sandbox; the
  threads only wait, which is why more jobs than cores pays off: grading mostly waits on paced services).
* ray: ``grade_one`` as a Ray task (``max_retries=0``: a crashed task is an error row, never a second
  grading). ``--address`` joins a running cluster; without it a local Ray is started bound to
  127.0.0.1. The nodes need this infergrade version installed and the batch source and output folder
  on a shared file system; a node with another version is refused per submission.
"""

from __future__ import annotations

import os
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any, Callable

from grading.batch.task import error_report, grade_one

__all__ = ["ExecutorError", "LocalExecutor", "RayExecutor", "make_executor"]

Task = dict[str, Any]
OnStart = Callable[[Task], None]
OnResult = Callable[[Task, dict[str, Any]], None]


class ExecutorError(RuntimeError):
    """The executor cannot start (the message says what to install or change)."""


class LocalExecutor:
    name = "local"

    def __init__(self, jobs: int) -> None:
        self.jobs = max(1, int(jobs))

    def run(self, tasks: list[Task], on_start: OnStart, on_result: OnResult) -> None:
        pending = list(tasks)
        pool = ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="infergrade-batch")
        in_flight: dict[Future, Task] = {}
        try:
            while pending or in_flight:
                while pending and len(in_flight) < self.jobs:
                    task = pending.pop(0)
                    on_start(task)
                    in_flight[pool.submit(grade_one, task)] = task
                done, _ = wait(list(in_flight), return_when=FIRST_COMPLETED)
                for future in done:
                    task = in_flight.pop(future)
                    on_result(task, future.result())   # grade_one never raises
        finally:
            pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        pass


class RayExecutor:
    name = "ray"

    def __init__(self, jobs: int, address: str | None = None) -> None:
        try:
            import ray
        except ImportError:
            raise ExecutorError("--executor ray needs Ray on this machine and on the cluster: "
                                "pip install 'ray>=2.9' (or use the default --executor local)") from None
        self.ray = ray
        self.jobs = max(1, int(jobs))
        self.started_here = False
        if not ray.is_initialized():
            os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
            try:
                if address in (None, "", "local"):
                    # a private local Ray, reachable from this machine only
                    ray.init(num_cpus=os.cpu_count() or 1, include_dashboard=False, log_to_driver=False,
                             _node_ip_address="127.0.0.1", object_store_memory=128 * 2**20,
                             configure_logging=False)
                else:
                    ray.init(address=address, log_to_driver=False, configure_logging=False)
            except Exception as exc:
                raise ExecutorError(f"could not start or reach Ray at {address or 'a local instance'}: {exc}; "
                                    "check --address (e.g. ray://head:10001 or auto)") from None
            self.started_here = True
        # grading waits on paced services most of the time: a quarter CPU per submission
        self.remote = ray.remote(num_cpus=0.25, max_retries=0)(grade_one)

    def run(self, tasks: list[Task], on_start: OnStart, on_result: OnResult) -> None:
        from grading import __version__

        pending = list(tasks)
        in_flight: dict[Any, Task] = {}
        try:
            while pending or in_flight:
                while pending and len(in_flight) < self.jobs:
                    task = pending.pop(0)
                    on_start(task)
                    in_flight[self.remote.remote(task)] = task
                done, _ = self.ray.wait(list(in_flight), num_returns=1)
                for ref in done:
                    task = in_flight.pop(ref)
                    try:
                        result = self.ray.get(ref)
                    except Exception as exc:
                        result = {"key": task["key"], "log": str(exc), "notes": [], "grader_version": __version__,
                                  "report": error_report(task, f"the Ray task failed ({type(exc).__name__}); "
                                                               "see the node's logs")}
                    if result.get("grader_version") != __version__:
                        result["report"] = error_report(
                            task, f"the Ray node runs infergrade {result.get('grader_version')}, this batch "
                                  f"{__version__}: install the same version on every node")
                    on_result(task, result)
        finally:
            for ref in in_flight:
                self.ray.cancel(ref, force=True)

    def close(self) -> None:
        if self.started_here:
            self.ray.shutdown()


def make_executor(kind: str, jobs: int, address: str | None = None) -> LocalExecutor | RayExecutor:
    if kind == "local":
        if address:
            raise ExecutorError("--address is for --executor ray; the local executor needs none")
        return LocalExecutor(jobs)
    if kind == "ray":
        return RayExecutor(jobs, address)
    raise ExecutorError(f"unknown executor {kind!r}: use local or ray")
