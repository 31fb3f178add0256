"""Execute a submission's notebooks headless, from a clean kernel each, and summarise them as JSON.

Runs INSIDE the sandboxed worker (op ``"notebook"``, see worker.py): the kernel is a child of the
worker, so it inherits the worker's confinement, its environment (canary token, service URLs) and
its working folder (the submission copy). The kernel is a separate Python, so the transport-level
host redirection is installed in it by a ``sitecustomize.py`` put first on its ``PYTHONPATH``
(``grading.commands.run.write_sitecustomize``, as ``python -m grading run`` does).

The grader's side calls :func:`run_in_sandbox`; the worker calls :func:`run_request`. The summary::

    {"notebooks": [{"name": "x.ipynb", "status": "ok" | "failed" | "invalid" | "missing" | "kernel",
                    "message": str | None, "kernel_start_s": float, "duration_s": float,
                    "cells": [{"index": 0, "cell_type": "code", "tags": [...], "status":
                               "ok" | "error" | "timeout" | "not_run" | "markdown",
                               "t_start": monotonic, "t_end": monotonic, "source": excerpt,
                               "outputs": [...], "error": {"name", "value", "traceback"} | None}]}]}

Outputs: ``{"type": "stream", "name", "text"}``, ``{"type": "execute_result" | "display_data",
"data": {mime: text}, "images": [{mime, width, height, sha256, pixels_sha256}]}``. Text is
truncated; tracebacks keep the student's frames and drop the grader's. Cell numbers in messages
count every cell from 1, as Jupyter shows them.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import math
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from grading.sandbox import kernel_forker

MAX_TEXT = 4000
MAX_TRACEBACK = 1800
MAX_SOURCE = 600
TEXT_MIMES = ("text/plain", "text/markdown", "text/html", "application/json")
IMAGE_MIMES = ("image/png", "image/jpeg", "image/gif")
GRADER_DIR = str(Path(__file__).resolve().parents[1])   # .../grading: never shown to students
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _clip(text: str, limit: int = MAX_TEXT) -> str:
    return text if len(text) <= limit else text[:limit] + f" …[{len(text) - limit} more characters]"


def _student_text(text: str, root: str) -> str:
    return _ANSI.sub("", text).replace(root + os.sep, "").replace(root, ".")


def _traceback(frames: list[str], root: str) -> str:
    """The kernel's traceback without ANSI colours and without frames in the grader's code."""
    kept = [_student_text(f, root) for f in frames if GRADER_DIR not in f and "_infergrade" not in f]
    text = "\n".join(kept).strip()
    return text if len(text) <= MAX_TRACEBACK else "…\n" + text[-MAX_TRACEBACK:]


def _image(mime: str, payload: Any) -> dict[str, Any]:
    info: dict[str, Any] = {"mime": mime, "width": None, "height": None, "sha256": None, "pixels_sha256": None}
    try:
        data = base64.b64decode(payload if isinstance(payload, str) else "".join(payload))
        info["sha256"] = hashlib.sha256(data).hexdigest()
        from PIL import Image

        with Image.open(io.BytesIO(data)) as img:
            img.load()
            info["width"], info["height"] = img.size
            info["pixels_sha256"] = hashlib.sha256(img.convert("RGB").tobytes()).hexdigest()
    except Exception as exc:  # noqa: BLE001 - a broken image is reported, not raised
        info["problem"] = f"{type(exc).__name__}: {exc}"[:200]
    return info


def _outputs(cell: Any, root: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for output in cell.get("outputs", []):
        kind = output.get("output_type")
        if kind == "stream":
            out.append({"type": "stream", "name": output.get("name"),
                        "text": _clip(_student_text(str(output.get("text", "")), root))})
        elif kind in ("execute_result", "display_data"):
            data = output.get("data", {})
            texts = {}
            for mime in TEXT_MIMES:
                if mime in data:
                    value = data[mime]
                    value = value if isinstance(value, str) else "".join(value) if isinstance(value, list) \
                        else json.dumps(value)
                    texts[mime] = _clip(_student_text(value, root))
            images = [_image(mime, data[mime]) for mime in IMAGE_MIMES if mime in data]
            out.append({"type": kind, "data": texts, "images": images})
        elif kind == "error":
            out.append({"type": "error", "name": output.get("ename"), "value": _clip(str(output.get("evalue")), 500)})
    return out


#: lines holding a watched string (the canary) kept per notebook, each cut to this many characters around it
MAX_WATCHED_LINES = 5
WATCHED_CONTEXT = 120


def _output_texts(output: Any) -> list[str]:
    """Every text a cell output shows: stream text, the text forms of a result, an error and its traceback."""
    kind = output.get("output_type")
    if kind == "stream":
        return [str(output.get("text", ""))]
    if kind in ("execute_result", "display_data"):
        data = output.get("data", {})
        return [v if isinstance(v, str) else "".join(map(str, v)) if isinstance(v, list) else json.dumps(v)
                for mime, v in data.items() if mime in TEXT_MIMES]
    if kind == "error":
        return [str(output.get("evalue", "")), *map(str, output.get("traceback") or [])]
    return []


def watched_lines(nb: Any, ran: set[int], watch: list[str]) -> list[str]:
    """Lines of the outputs of the cells ``ran`` (indexes) that hold a ``watch`` string, whole outputs
    searched (not the clipped copies the report gets), each cut to the string and a little around it."""
    found: list[str] = []
    for index in sorted(ran):
        for output in nb.cells[index].get("outputs", []):
            for text in _output_texts(output):
                for line in text.splitlines():
                    hits = [line.find(w) for w in watch if w and w in line]
                    if hits:
                        start = max(0, min(hits) - WATCHED_CONTEXT)
                        found.append(f"cell {index + 1}: {line[start:min(hits) + WATCHED_CONTEXT + 64]}")
                        if len(found) >= MAX_WATCHED_LINES:
                            return found
    return found


def _error_of(cell: Any, root: str) -> dict[str, str] | None:
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            return {"name": str(output.get("ename")), "value": _clip(_student_text(str(output.get("evalue")), root), 500),
                    "traceback": _traceback(list(output.get("traceback") or []), root)}
    return None


def _kernel_manager(argv: list[str]) -> Any:
    """A kernel manager whose kernel is always ``argv`` (the notebook's metadata cannot pick another)."""
    from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager

    class FixedSpecs(KernelSpecManager):
        def get_kernel_spec(self, kernel_name: str, *a: Any, **k: Any) -> KernelSpec:
            return KernelSpec(argv=list(argv), display_name="Python 3", language="python", resource_dir="")

    return AsyncKernelManager(kernel_name="python3", kernel_spec_manager=FixedSpecs())


def _load(path: Path) -> tuple[Any, str | None]:
    import nbformat

    if not path.is_file():
        return None, f"{path.name} was not found in the submission (it must be in the top folder)"
    try:
        nb = nbformat.read(str(path), as_version=4)
    except Exception as exc:  # noqa: BLE001 - JSON errors, schema errors, encodings
        return None, f"{path.name} is not a valid notebook: {type(exc).__name__}: {str(exc)[:300]}"
    return nb, None


def run_notebook(path: Path, *, root: Path, cell_timeout_s: float, notebook_timeout_s: float,
                 kernel_argv: list[str], kernel_env: dict[str, str], startup_timeout_s: float = 60.0,
                 watch: list[str] | None = None) -> dict[str, Any]:
    """Execute one notebook top to bottom in a fresh kernel; never raises for anything the notebook does.

    ``summary["printed"]``: lines of what the run's cells output that hold a ``watch`` string (the
    canary), for the ``auth`` checkpoint to judge with everything else the student's code printed.
    """
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    started = time.monotonic()
    summary: dict[str, Any] = {"name": path.name, "status": "ok", "message": None, "cells": [],
                               "kernel_start_s": None, "duration_s": 0.0, "printed": []}
    nb, problem = _load(path)
    if nb is None:
        summary.update(status="missing" if "not found" in (problem or "") else "invalid", message=problem)
        return summary
    cells = summary["cells"]
    for index, cell in enumerate(nb.cells):
        cells.append({"index": index, "cell_type": cell.cell_type, "tags": list(cell.get("metadata", {}).get("tags", [])),
                      "status": "not_run" if cell.cell_type == "code" else cell.cell_type,
                      "source": _clip(str(cell.get("source", "")), MAX_SOURCE), "outputs": [], "error": None,
                      "t_start": None, "t_end": None})
    client = NotebookClient(nb, km=_kernel_manager(kernel_argv), timeout=int(cell_timeout_s), allow_errors=True,
                            interrupt_on_timeout=False, startup_timeout=int(startup_timeout_s),
                            record_timing=False, shutdown_kernel="immediate")
    deadline = started + notebook_timeout_s
    stderr_file = tempfile.TemporaryFile()
    try:
        with client.setup_kernel(cwd=str(root), env=kernel_env, stderr=stderr_file):
            summary["kernel_start_s"] = round(time.monotonic() - started, 3)
            for index, cell in enumerate(nb.cells):
                entry = cells[index]
                if cell.cell_type != "code" or not str(cell.source).strip():
                    if cell.cell_type == "code":
                        entry["status"] = "ok"
                    continue
                remaining = deadline - time.monotonic()
                if remaining < 1:
                    summary.update(status="failed", message=(
                        f"{path.name} did not finish within its time limit of {notebook_timeout_s:.0f} s: "
                        f"cell {index + 1} and the cells after it were not run"))
                    break
                client.timeout = max(1, int(math.ceil(min(cell_timeout_s, remaining))))
                entry["t_start"] = time.monotonic()
                try:
                    client.execute_cell(cell, index)
                except CellTimeoutError:
                    entry.update(status="timeout", t_end=time.monotonic(), outputs=_outputs(cell, str(root)))
                    limit = client.timeout
                    what = "the notebook's" if limit < cell_timeout_s else "the per-cell"
                    entry["error"] = {"name": "Timeout", "value": f"cell {index + 1} did not finish within "
                                      f"{limit} s ({what} time limit) and was stopped", "traceback": ""}
                    summary.update(status="failed", message=f"{path.name}, cell {index + 1}: {entry['error']['value']}; "
                                   "the cells after it were not run (a loop that never ends, a missing timeout, "
                                   "or waiting on a service that never answers?)")
                    break
                except DeadKernelError:
                    entry.update(status="error", t_end=time.monotonic(), outputs=_outputs(cell, str(root)))
                    entry["error"] = {"name": "DeadKernel", "value": "the kernel died while this cell ran "
                                      "(sys.exit, os._exit, a crash or too much memory?)", "traceback": ""}
                    summary.update(status="failed", message=f"{path.name}, cell {index + 1}: the kernel died "
                                   "while it ran; the cells after it were not run")
                    break
                entry["t_end"] = time.monotonic()
                entry["outputs"] = _outputs(cell, str(root))
                entry["error"] = _error_of(cell, str(root))
                entry["status"] = "error" if entry["error"] else "ok"
    except Exception as exc:  # noqa: BLE001 - the kernel could not start (or stop)
        if summary["kernel_start_s"] is None:
            stderr_file.seek(0)
            tail = _student_text(stderr_file.read()[-800:].decode("utf-8", "replace"), str(root)).strip()
            summary.update(status="kernel", message=(
                f"{path.name}: the Python kernel could not start ({type(exc).__name__}: {str(exc)[:200]}); "
                f"no cell was run" + (f". Its output:\n{tail}" if tail else "")))
    finally:
        stderr_file.close()
    ran = {c["index"] for c in cells if c["cell_type"] == "code" and c["t_start"] is not None}
    summary["printed"] = watched_lines(nb, ran, list(watch or []))
    if summary["status"] == "ok":
        failed = [c for c in cells if c["status"] == "error"]
        if failed:
            first = failed[0]
            summary.update(status="failed", message=(
                f"{path.name}, cell {first['index'] + 1} raised {first['error']['name']}: "
                f"{first['error']['value'][:300]}" + (f" ({len(failed) - 1} more cell(s) failed after it)"
                                                       if len(failed) > 1 else "")))
    summary["duration_s"] = round(time.monotonic() - started, 3)
    return summary


def default_kernel_argv() -> list[str]:
    return [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]


def run_request(root: Path, request: dict[str, Any]) -> dict[str, Any]:
    """The worker's op ``notebook``: run ``request["names"]`` (files in the submission) one by one."""
    from grading.commands.run import write_sitecustomize

    names = [str(n) for n in request.get("names", [])]
    cell_timeout_s = float(request.get("cell_timeout_s", 30))
    notebook_timeout_s = float(request.get("notebook_timeout_s", 120))
    site_dir = tempfile.mkdtemp(prefix="infergrade-kernel-")
    forker, socket_path = None, ""
    try:
        write_sitecustomize(site_dir)
        env = dict(os.environ)
        # the redirect, then the tier's stand-in modules (as the worker's sys.path has them); nothing else
        extras = [p for p in os.environ.get("INFERGRADE_EXTRA_SYSPATH", "").split(os.pathsep) if p]
        env["PYTHONPATH"] = os.pathsep.join([site_dir, *extras])
        env.setdefault("MPLBACKEND", "Agg")
        env["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"
        kernel_argv = list(request.get("kernel_argv") or [])
        # in a worker: kernels forked, not started (~1 s of CPU each; grading/sandbox/kernel_forker.py)
        if not kernel_argv and request.get("fork_kernels") and kernel_forker.usable():
            socket_path, forker = kernel_forker.start()
            kernel_argv = kernel_forker.stub_argv(socket_path)
        results = []
        for name in names:
            path = (root / name).resolve()
            if path.parent != root.resolve():
                results.append({"name": name, "status": "invalid", "message": f"{name} is not a notebook "
                                "in the submission's top folder", "cells": [], "kernel_start_s": None,
                                "duration_s": 0.0})
                continue
            results.append(run_notebook(path, root=root, cell_timeout_s=cell_timeout_s,
                                        notebook_timeout_s=notebook_timeout_s,
                                        kernel_argv=kernel_argv or default_kernel_argv(),
                                        kernel_env=env, watch=[str(w) for w in request.get("watch") or []]))
        return {"notebooks": results}
    finally:
        shutil.rmtree(site_dir, ignore_errors=True)
        if forker is not None:
            kernel_forker.stop(forker, socket_path)


def run_in_sandbox(lab: Any, names: list[str], *, cell_timeout_s: float = 30.0,
                   notebook_timeout_s: float = 120.0) -> dict[str, Any]:
    """The grader's side: run ``names`` in ``lab``'s worker (one worker, one fresh kernel each)."""
    payload = {"names": list(names), "cell_timeout_s": cell_timeout_s, "notebook_timeout_s": notebook_timeout_s,
               "watch": list(getattr(lab, "watch_output", ())), "fork_kernels": True}
    # the notebooks' own limits stop them; the call's limit only catches a worker that stops answering
    budget = len(names) * (notebook_timeout_s + 60.0) + 30.0
    return lab.op("notebook", payload, label="the notebooks", timeout_s=budget)
