"""Checkpoint `notebooks`: the three practice notebooks run headless and show what they were asked to.

Each notebook is executed top to bottom from a clean kernel in the sandboxed worker (nbclient; one
worker, a fresh kernel per notebook; grading/sandbox/notebooks.py), against the tier's services, with a
per-cell time limit (the rubric's ``call_timeout_s``) and a per-notebook one. The graded outputs are
in cells tagged ``answer:<what>`` and are judged against what the services really did while that cell
ran (the simulators' request log): the image shown is the one the provider generated, at the size
asked; the provider table names every provider the cell compared; the tokens/sec figure is the
server's own ``eval_count / eval_duration``. A token in a notebook is judged by `auth`, not here.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from grading.hf_checks import describe_records, redact
from grading.sandbox.notebooks import run_in_sandbox

IMAGE_NB = "image_generation_practice.ipynb"
CHAT_NB = "chat_inference_practice.ipynb"
OLLAMA_NB = "ollama_practice.ipynb"
NOTEBOOKS = (IMAGE_NB, CHAT_NB, OLLAMA_NB)
NOTEBOOK_TIMEOUT_S = 120.0
IMAGE_SIZE = (384, 256)               # what the notebook's text asks for
NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_RUNS: dict[int, dict[str, Any]] = {}


# -- running the notebooks once per worker ------------------------------------------------------------
@pytest.fixture(scope="module")
def executed(lab, services, canary_token, grading_context) -> dict[str, Any]:
    """{name: summary} of the three notebooks, run once; plus the services' log records."""
    if id(lab) in _RUNS:
        return _RUNS[id(lab)]
    for name in ("hf", "ollama"):
        sim = services.services.get(name)
        if sim is not None:
            if name == "hf":
                sim.expected_token = canary_token
            sim.reset()
            if name == "ollama" and hasattr(sim, "set_model"):   # brisk decoding: the notebooks take less time
                sim.set_model(sim.chat_model, eval_tok_s=320.0)
    per_cell = float(grading_context.rubric.checkpoint("notebooks").limits.call_timeout_s)
    try:
        summary = run_in_sandbox(lab, list(NOTEBOOKS), cell_timeout_s=per_cell, notebook_timeout_s=NOTEBOOK_TIMEOUT_S)
        error = None
    except Exception as exc:  # a StudentCodeError: the worker itself failed; every item says so
        summary, error = {"notebooks": []}, exc
    for nb in summary["notebooks"]:   # the canary in what a cell output: judged by auth, with all that was printed
        grading_context.note_printed("notebooks", [f"{nb['name']}, {line}" for line in nb.get("printed") or []])
    result = {"by_name": {nb["name"]: nb for nb in summary["notebooks"]}, "error": error,
              "records": list(services.log.records()), "token": canary_token}
    _RUNS[id(lab)] = result
    return result


def simulated(services: Any, name: str) -> None:
    """The output checks compare with a simulator's request log: none in this tier, nothing to compare with."""
    if name not in services.services:
        pytest.skip(f"no {name} simulator in this tier, so there is no log to judge this output against: "
                    f"{services.unavailable.get(name, 'the service did not start')}")


def notebook(executed: dict[str, Any], name: str) -> dict[str, Any]:
    if executed["error"] is not None:
        raise AssertionError(f"the notebooks could not be run: {executed['error']}")
    return executed["by_name"][name]


def excerpt(nb: dict[str, Any], cell: dict[str, Any], token: str) -> str:
    """The failing cell as the student sees it: its first lines and the end of its error."""
    lines = cell["source"].splitlines()
    source = "\n".join("    " + line for line in lines[:6]) + ("\n    …" if len(lines) > 6 else "")
    error = cell.get("error") or {}
    trace = error.get("traceback") or f"{error.get('name')}: {error.get('value')}"
    trace = "\n".join(trace.splitlines()[-10:])
    return redact(f"--- {nb['name']}, cell {cell['index'] + 1} ---\n{source}\n--- error ---\n{trace}", [token])


def tagged(executed: dict[str, Any], name: str, tag: str) -> dict[str, Any]:
    """The cell tagged ``tag``, after it ran without an error (else a message naming it)."""
    nb = notebook(executed, name)
    assert nb["status"] not in ("missing", "invalid", "kernel"), nb["message"]
    cells = [c for c in nb["cells"] if tag in c["tags"]]
    assert cells, (f"{name} has no cell tagged {tag!r}; keep the tags of the graded cells "
                   "(View > Cell toolbar > Tags in Jupyter; the template has them)")
    cell = cells[-1]
    if cell["status"] == "not_run":
        raise AssertionError(f"{name}: the cell tagged {tag!r} (cell {cell['index'] + 1}) was not run: {nb['message']}")
    if cell["status"] != "ok":
        first = next(c for c in nb["cells"] if c["status"] in ("error", "timeout"))
        before = (f" (cell {first['index'] + 1} failed before it: {first['error']['name']}: "
                  f"{redact(first['error']['value'][:150], [executed['token']])})" if first is not cell else "")
        raise AssertionError(f"{name}: the cell tagged {tag!r} (cell {cell['index'] + 1}) failed{before}\n"
                             + excerpt(nb, cell, executed["token"]))
    return cell


def during(executed: dict[str, Any], cell: dict[str, Any], *routes: str) -> list:
    return [r for r in executed["records"] if cell["t_start"] <= r.t_start <= cell["t_end"]
            and (r.extra or {}).get("route") in routes]


def rich(cell: dict[str, Any]) -> list[dict[str, Any]]:
    return [o for o in cell["outputs"] if o["type"] in ("execute_result", "display_data")]


# -- items --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs(executed, name):
    nb = notebook(executed, name)
    if nb["status"] in ("missing", "invalid", "kernel"):
        raise AssertionError(nb["message"])
    bad = [c for c in nb["cells"] if c["status"] in ("error", "timeout")]
    if bad:
        more = f"\n({len(bad) - 1} more failing cell(s) after it)" if len(bad) > 1 else ""
        raise AssertionError(f"{nb['message']}\n{excerpt(nb, bad[0], executed['token'])}{more}")
    assert nb["status"] == "ok", nb["message"]
    print(f"\n{name}: kernel {nb['kernel_start_s']:.2f} s, whole notebook {nb['duration_s']:.2f} s")


def test_image_output(executed, services):
    simulated(services, "hf")
    cell = tagged(executed, IMAGE_NB, "answer:image")
    images = [i for o in rich(cell) for i in o["images"]]
    width, height = IMAGE_SIZE
    assert images, (f"{IMAGE_NB}: the cell tagged 'answer:image' (cell {cell['index'] + 1}) shows no image; end it "
                    "with IPython.display.Image(filename=result['path']) (or display(...) it)")
    made = [r for r in during(executed, cell, "provider-image", "router-image") if (r.extra or {}).get("image")]
    assert made, (f"{IMAGE_NB}: no image was generated by a provider while the cell tagged 'answer:image' ran "
                  f"(requests seen: {describe_records(during(executed, cell, *ROUTES_ANY), executed['token'])}); "
                  "generate it with hf_image.generate_image(...) in that cell")
    sizes = [(i["width"], i["height"]) for i in images]
    assert (width, height) in sizes, (
        f"{IMAGE_NB}: the cell tagged 'answer:image' shows an image of {' and '.join(f'{w}x{h}' for w, h in sizes)}, "
        f"but {width}x{height} (width {width}, height {height}) was asked for; pass width={width}, height={height}")
    truth = {(r.extra["image"].get("width"), r.extra["image"].get("height"), r.extra["image"].get("pixels_sha256"))
             for r in made}
    shown = {(i["width"], i["height"], i["pixels_sha256"]) for i in images}
    assert truth & shown, (
        f"{IMAGE_NB}: the image the cell tagged 'answer:image' shows is not the one the provider generated while it "
        "ran (its pixels differ); show the PNG generate_image saved (Image(filename=result['path']))")


ROUTES_ANY = ("provider-image", "router-image", "image-fetch", "provider-chat", "router-chat", "hub-mapping",
              "api-generate", "api-chat")


def table_rows(cell: dict[str, Any]) -> list[list[str]]:
    """Rows of the Markdown pipe tables and HTML tables the cell displayed (or printed)."""
    texts = [o["data"].get("text/markdown", "") for o in rich(cell)]
    texts += [o["text"] for o in cell["outputs"] if o["type"] == "stream"]
    rows = []
    for text in texts:
        for line in text.splitlines():
            line = line.strip()
            if line.startswith("|") and line.count("|") >= 3 and not set(line) <= set("|-: "):
                rows.append([part.strip() for part in line.strip("|").split("|")])
    for o in rich(cell):
        html = o["data"].get("text/html", "")
        for tr in re.findall(r"<tr[^>]*>(.*?)</tr>", html, flags=re.S | re.I):
            cells = re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", tr, flags=re.S | re.I)
            rows.append([re.sub(r"<[^>]+>", "", c).strip() for c in cells])
    return rows


def test_provider_table(executed, services):
    simulated(services, "hf")
    cell = tagged(executed, CHAT_NB, "answer:provider_table")
    calls = during(executed, cell, "provider-chat", "router-chat")
    asked = sorted({(r.extra or {}).get("requested_provider") or r.provider for r in calls} - {None})
    assert len(asked) >= 2, (
        f"{CHAT_NB}: while the cell tagged 'answer:provider_table' ran, {len(asked)} provider(s) were called "
        f"({', '.join(asked) or 'none'}); compare at least two with strategies.compare_providers(...) in that cell")
    rows = table_rows(cell)
    assert rows, (f"{CHAT_NB}: the cell tagged 'answer:provider_table' (cell {cell['index'] + 1}) shows no table; "
                  "display one row per provider: display(Markdown('| provider | success rate | p50 (s) | ...')) "
                  "or a pandas DataFrame")
    missing = []
    for provider in asked:
        row = next((r for r in rows if r and r[0] == provider), None)
        if row is None or not any(NUMBER.fullmatch(c) for c in row[1:]):
            missing.append(provider)
    assert not missing, (
        f"{CHAT_NB}: the table of the cell tagged 'answer:provider_table' has no row with numbers for "
        f"{', '.join(missing)} (the cell compared {', '.join(asked)}); one row per provider, its name in the first "
        "column, then its success rate and latencies")


def test_tokens_per_s(executed, thresholds, services):
    simulated(services, "ollama")
    cell = tagged(executed, OLLAMA_NB, "answer:tokens_per_s")
    results = [o for o in rich(cell) if o["type"] == "execute_result"]
    assert results, (f"{OLLAMA_NB}: the cell tagged 'answer:tokens_per_s' (cell {cell['index'] + 1}) has no value; "
                     "end it with the tokens/sec number on its last line (e.g. result['tokens_per_s'])")
    text = results[-1]["data"].get("text/plain", "")
    numbers = NUMBER.findall(text)
    assert len(numbers) == 1, (f"{OLLAMA_NB}: the value of the cell tagged 'answer:tokens_per_s' is {text[:80]!r}; "
                               "it must be one number, the tokens/sec")
    value = float(numbers[0])
    runs = [r for r in during(executed, cell, "api-generate", "api-chat")
            if (r.extra or {}).get("eval_count") and (r.extra or {}).get("eval_duration_ns")]
    assert runs, (f"{OLLAMA_NB}: no generation reached the Ollama server while the cell tagged 'answer:tokens_per_s' "
                  "ran; call ollama_client.generate(...) in that cell")
    rel = float(thresholds["derived_rel"])
    truths = [r.extra["eval_count"] / (r.extra["eval_duration_ns"] / 1e9) for r in runs]
    assert any(abs(value - t) <= rel * t for t in truths), (
        f"{OLLAMA_NB}: the cell tagged 'answer:tokens_per_s' shows {value:g} tokens/s, but the server generated "
        f"{runs[-1].extra['eval_count']} tokens in eval_duration={runs[-1].extra['eval_duration_ns']} ns, i.e. "
        f"{truths[-1]:.2f} tokens/s; use eval_count / (eval_duration / 1e9) (nanoseconds, decode time only)")
