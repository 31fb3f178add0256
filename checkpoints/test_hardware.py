"""Checkpoint `hardware`: memory and hardware considerations.

``inference_lab.hardware`` must report this machine as it is (CPUs, RAM, GPUs), estimate the memory a
model needs (weights x bits / 8 plus the KV cache, times an overhead factor), decide whether a model
fits, and sample resource use while something runs. The ground truth is the grader's own reading of
the machine (``grading/hardware.py``) and the formula in DESIGN.md; tolerances come from
``grading/thresholds.toml``; the real models that estimates and ``fits`` are also judged on are listed
in ``grading/hardware_table.toml``. Only behaviour is judged: psutil, /proc, NVML or torch are all fine.

The grader's own tests run this checkpoint on machines without a GPU with a fake NVML
(``INFERGRADE_FAKE_NVML``, see grading/hardware.py): the ``lab`` fixture below then gives the worker
the same fake GPUs the grader reads.
"""

from __future__ import annotations

import math
import statistics
from typing import Any

import pytest

from grading.hardware import (CpuLoad, cpu_busy_percent, cpu_times, hardware_table, memory_estimate_gb,
                              model_estimate_kwargs, ram_used_mb_readings, worker_env)

TABLE = hardware_table()

FORMULA = ("(params_billion*1e9*bits_per_weight/8 + 2*n_layers*context_len*hidden_size*kv_bits/8*batch)"
           " * overhead / 1e9")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _close(value: float, truth: float, rel: float) -> bool:
    return abs(value - truth) <= rel * abs(truth) + 1e-12


def _call_text(name: str, args: tuple, kwargs: dict) -> str:
    parts = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
    return f"{name}({', '.join(parts)})"


@pytest.fixture(scope="module")
def lab(lab):
    """The plugin's worker for this checkpoint; it has not started yet, so its environment can still take
    the fake NVML of a grader test run (unchanged in real grading: ``worker_env`` adds nothing then)."""
    lab.extra_env = worker_env(lab.extra_env)
    return lab


# -- detect ----------------------------------------------------------------------------------------
def test_detect_matches_machine(lab, hardware, thresholds):
    result = lab.call("hardware.detect")
    assert isinstance(result, dict), (
        f"detect() returned {type(result).__name__}; it must return a dict with keys "
        "gpus, cpu_count, ram_total_mb")
    missing = [key for key in ("gpus", "cpu_count", "ram_total_mb") if key not in result]
    assert not missing, (
        f"detect() has no {', '.join(missing)}; it must return {{gpus: [...], cpu_count, ram_total_mb}} "
        "(extra keys are fine)")

    cpu_count = result["cpu_count"]
    assert isinstance(cpu_count, int) and not isinstance(cpu_count, bool), (
        f"detect()['cpu_count'] is {cpu_count!r}; it must be an integer (the number of logical CPUs)")
    accepted = sorted({n for n in (hardware["cpu_count"], hardware.get("cpu_count_usable")) if n})
    assert cpu_count in accepted, (
        f"detect()['cpu_count'] is {cpu_count} but this machine has {hardware['cpu_count']} logical CPUs "
        f"(accepted: {' or '.join(map(str, accepted))}); count logical CPUs (hyper-threads included), "
        "e.g. os.cpu_count() or psutil.cpu_count(logical=True)")

    ram = result["ram_total_mb"]
    truth = hardware["ram_total_mb"]
    assert _is_number(ram), f"detect()['ram_total_mb'] is {ram!r}; it must be a number of MiB"
    rel = thresholds["ram_total_rel"]
    hint = ""
    if _close(ram * 1e6 / 2**20, truth, rel):
        hint = " (it looks like MB of 10**6 bytes: divide bytes by 2**20)"
    elif _close(ram * 1024, truth, rel):
        hint = " (it looks like GiB: report MiB)"
    elif _close(ram / 1024, truth, rel):
        hint = " (it looks like KiB: divide bytes by 2**20, or kB from /proc/meminfo by 1024)"
    assert _close(ram, truth, rel), (
        f"detect()['ram_total_mb'] is {ram} but this machine has {truth:.0f} MiB of RAM "
        f"(accepted within {rel:.0%}){hint}; read the total physical memory of this machine, "
        "never a fixed number")

    gpus = result["gpus"]
    assert isinstance(gpus, list), f"detect()['gpus'] is {type(gpus).__name__}; it must be a list (empty without a GPU)"
    expected = hardware["gpus"]
    if not expected:
        assert gpus == [], (
            f"detect() reports {len(gpus)} GPU(s) but this machine has none; without an NVIDIA GPU "
            "(or when NVML/CUDA is unavailable) gpus must be []")
        return
    assert len(gpus) == len(expected), (
        f"detect() reports {len(gpus)} GPU(s) but this machine has {len(expected)} "
        f"({', '.join(g['name'] for g in expected)}); list every GPU (pynvml: nvmlDeviceGetCount())")
    gpu_rel = thresholds.get("gpu_memory_rel", thresholds["ram_total_rel"])
    for index, gpu in enumerate(gpus):
        assert isinstance(gpu, dict) and {"name", "memory_total_mb", "memory_used_mb"} <= set(gpu), (
            f"detect()['gpus'][{index}] is {gpu!r}; each GPU must be a dict with name, memory_total_mb, "
            "memory_used_mb")
        assert isinstance(gpu["name"], str) and _is_number(gpu["memory_total_mb"]) and \
            _is_number(gpu["memory_used_mb"]), (
                f"detect()['gpus'][{index}] is {gpu!r}; name must be a string (decode bytes from older "
                "pynvml versions) and the memory values numbers of MiB")
    # Compare as sets: torch orders devices fastest-first, NVML by PCI bus.
    remaining = list(expected)
    for gpu in gpus:
        match = next((g for g in remaining if g["name"].strip().lower() == gpu["name"].strip().lower()
                      and _close(gpu["memory_total_mb"], g["memory_total_mb"], gpu_rel)), None)
        assert match is not None, (
            f"detect() reports a GPU {gpu['name']!r} with {gpu['memory_total_mb']} MiB, but this machine has "
            + "; ".join(f"{g['name']!r} with {g['memory_total_mb']:.0f} MiB" for g in expected)
            + f" (memory within {gpu_rel:.0%}); report each GPU's name and total memory in MiB")
        remaining.remove(match)
        assert 0 <= gpu["memory_used_mb"] <= gpu["memory_total_mb"] * (1 + gpu_rel), (
            f"detect() says GPU {gpu['name']!r} uses {gpu['memory_used_mb']} MiB of "
            f"{gpu['memory_total_mb']} MiB; memory_used_mb must be the MiB in use now (0..total)")


# -- estimate_memory_gb -----------------------------------------------------------------------------
WEIGHT_CASES = [
    pytest.param((7, 16), {}, id="7B-fp16"),                       # 16.8 GB
    pytest.param((13, 4), {}, id="13B-4bit"),                      # 7.8 GB
    pytest.param((0.135, 32), {}, id="135M-fp32"),                 # 0.648 GB
    pytest.param((7, 8), {"overhead": 1.0}, id="7B-int8-no-overhead"),  # 7.0 GB
]


def _check_estimate(lab, thresholds, args: tuple, kwargs: dict, what: str) -> None:
    rel = thresholds["memory_estimate_rel"]
    problem = _estimate_problem(lab, args, kwargs, rel, what, hint_rel=rel)
    assert problem is None, problem


def _estimate_problem(lab, args: tuple, kwargs: dict, rel: float, what: str, *, hint_rel: float) -> str | None:
    """None when the student's estimate is within ``rel`` of the formula, else what is wrong (with a
    hint at the likely mistake where the result is within ``hint_rel`` of that mistake's figure)."""
    call = _call_text("estimate_memory_gb", args, kwargs)
    result = lab.call("hardware.estimate_memory_gb", *args, **kwargs)
    if not _is_number(result):
        return f"{call} returned {result!r}; it must return a number of GB"
    truth = memory_estimate_gb(*args, **kwargs)
    hint = ""
    if truth and _close(result, truth * 1e9 / 2**30, hint_rel):
        hint = " (it looks like GiB: a GB here is 10**9 bytes)"
    elif truth and _close(result, truth * 8, hint_rel):
        hint = " (8x too much: bits_per_weight is bits, divide by 8 for bytes)"
    elif "overhead" not in kwargs and truth and _close(result, truth / 1.2, hint_rel):
        hint = " (the overhead factor, 1.2 by default, is missing)"
    elif kwargs.get("context_len") and _close(result, memory_estimate_gb(
            args[0], args[1], overhead=kwargs.get("overhead", 1.2)), hint_rel):
        hint = " (that is the weights alone: the KV cache is missing)"
    if _close(result, truth, rel):
        return None
    return (f"{call} returned {result:.4g} GB, expected {truth:.4g} GB (within {rel:.0%}){hint}; {what} "
            f"GB = {FORMULA}")


@pytest.mark.parametrize("args,kwargs", WEIGHT_CASES)
def test_estimate_weights(lab, thresholds, args, kwargs):
    _check_estimate(lab, thresholds, args, kwargs, "weights take params x bits / 8 bytes, times the overhead:")


KV_CASES = [
    # Llama-2-7B-like: 32 layers, hidden 4096, 4096 context, fp16 KV -> 2.147 GB of KV cache.
    pytest.param((0, 16), {"context_len": 4096, "n_layers": 32, "hidden_size": 4096, "kv_bits": 16,
                           "overhead": 1.0}, id="kv-only-llama2-7b"),
    pytest.param((7, 16), {"context_len": 4096, "n_layers": 32, "hidden_size": 4096}, id="llama2-7b-fp16"),
    # Mistral-7B-like with grouped-query attention (KV width 8 x 128), 8-bit KV, 4 sequences.
    pytest.param((7.24, 4), {"context_len": 32768, "n_layers": 32, "hidden_size": 1024, "kv_bits": 8,
                             "batch": 4, "overhead": 1.1}, id="mistral-7b-4bit-kv8-batch4"),
    # Llama-2-13B-like: 40 layers, hidden 5120, 2 sequences of 2048 tokens.
    pytest.param((13, 8), {"context_len": 2048, "n_layers": 40, "hidden_size": 5120, "batch": 2},
                 id="llama2-13b-int8-batch2"),
]


@pytest.mark.parametrize("args,kwargs", KV_CASES)
def test_estimate_kv_cache(lab, thresholds, args, kwargs):
    _check_estimate(lab, thresholds, args, kwargs,
                    "the KV cache adds 2 (K and V) x layers x context x hidden x kv_bits / 8 x batch bytes:")


@pytest.mark.parametrize("model", [pytest.param(m, id=m["name"]) for m in TABLE["models"]])
def test_estimate_real_models(lab, thresholds, model):
    """Every precision of the table (16/8/4 bits) at each of the model's context lengths."""
    rel = thresholds["model_table_rel"]
    problems = []
    for context in model["contexts"]:
        for bits in TABLE["estimate"]["bits"]:
            kwargs = model_estimate_kwargs(model, context, table=TABLE)
            what = (f"{model['name']} ({model['n_layers']} layers; hidden_size is its KV width, "
                    f"{model['n_kv_heads']} KV heads x {model['head_dim']} = {model['kv_width']}) at {bits} bits "
                    f"with a {context}-token context:")
            problem = _estimate_problem(lab, (model["params_billion"], bits), kwargs, rel, what,
                                        hint_rel=thresholds["memory_estimate_rel"])
            if problem:
                problems.append(problem)
    assert not problems, problems[0] + (f" ({len(problems) - 1} more of this model's cases are wrong too)"
                                        if len(problems) > 1 else "")


# -- fits -------------------------------------------------------------------------------------------
FITS_CASES = [
    # (args, kwargs, expected, why)
    ((7, 16, 24), {}, True, "7B at 16 bits needs 16.8 GB; 24 GB is enough"),
    ((7, 16, 16), {}, False, "7B at 16 bits needs 16.8 GB with the 1.2 overhead; 16 GB is not enough"),
    ((7, 4, 8), {}, True, "7B at 4 bits needs 4.2 GB; 8 GB is enough"),
    ((13, 4, 8), {}, True, "13B at 4 bits needs 7.8 GB; 8 GB is (just) enough"),
    ((13, 16, 24), {}, False, "13B at 16 bits needs 31.2 GB; 24 GB is not enough"),
    ((70, 4, 40), {}, False, "70B at 4 bits needs 42 GB; 40 GB is not enough"),
    ((7, 16, 15), {"overhead": 1.0}, True, "with overhead=1.0, 7B at 16 bits needs 14 GB; 15 GB is enough"),
    ((7, 16, 20), {"context_len": 32768, "n_layers": 32, "hidden_size": 4096}, False,
     "7B at 16 bits with a 32768-token fp16 KV cache needs 37.4 GB; 20 GB is not enough"),
    ((7, 16, 40), {"context_len": 32768, "n_layers": 32, "hidden_size": 4096}, True,
     "7B at 16 bits with a 32768-token fp16 KV cache needs 37.4 GB; 40 GB is enough"),
]


FITS_RULE = ("fits() must be estimate_memory_gb(params, bits, **kw) <= memory_gb, passing every keyword "
             "(context_len, n_layers, hidden_size, kv_bits, batch, overhead) on to the estimate")


def test_fits(lab, thresholds):
    for args, kwargs, expected, why in FITS_CASES:
        call = _call_text("fits", args, kwargs)
        result = lab.call("hardware.fits", *args, **kwargs)
        assert isinstance(result, bool), f"{call} returned {result!r}; it must return True or False"
        assert result is expected, f"{call} returned {result}, expected {expected}: {why}. {FITS_RULE}"
    # The real models of the table, at their first context, on common memory sizes. Where the memory is
    # within the table's tolerance of the formula, fits() must agree with the student's own estimate.
    rel = thresholds["model_table_rel"]
    for model in TABLE["models"]:
        for bits in TABLE["estimate"]["bits"]:
            args = (model["params_billion"], bits)
            kwargs = model_estimate_kwargs(model, model["contexts"][0], table=TABLE)
            truth = memory_estimate_gb(*args, **kwargs)
            own = None
            for memory in TABLE["fits"]["memory_gb"]:
                call = _call_text("fits", (*args, memory), kwargs)
                result = lab.call("hardware.fits", *args, memory, **kwargs)
                assert isinstance(result, bool), f"{call} returned {result!r}; it must return True or False"
                if abs(memory - truth) > rel * truth:
                    expected, why = truth <= memory, f"{model['name']} at {bits} bits needs {truth:.1f} GB"
                else:
                    if own is None:
                        own = lab.call("hardware.estimate_memory_gb", *args, **kwargs)
                    if not _is_number(own):
                        continue  # judged by the estimate's own tests
                    expected, why = own <= memory, f"your estimate_memory_gb() says {own:.1f} GB"
                assert result is expected, (
                    f"{call} returned {result}, expected {expected}: {why} and the memory is {memory} GB. "
                    f"{FITS_RULE}")


# -- sample_usage -----------------------------------------------------------------------------------
def test_sample_usage(lab, hardware, thresholds):
    lab.ping()  # the worker is running before the machine is read: its own memory counts on both sides
    before = ram_used_mb_readings()
    result = lab.call("hardware.sample_usage")
    after = ram_used_mb_readings()

    assert isinstance(result, dict), (
        f"sample_usage() returned {type(result).__name__}; it must return a dict with cpu_percent, "
        "ram_used_mb, gpus")
    missing = [key for key in ("cpu_percent", "ram_used_mb", "gpus") if key not in result]
    assert not missing, (
        f"sample_usage() has no {', '.join(missing)}; it must return {{cpu_percent, ram_used_mb, "
        "gpus: [{utilization_pct, memory_used_mb}]}}")

    cpu = result["cpu_percent"]
    cpus = max(n for n in (hardware["cpu_count"], hardware.get("cpu_count_usable") or 0))
    assert _is_number(cpu) and 0 <= cpu <= 100 * cpus, (
        f"sample_usage()['cpu_percent'] is {cpu!r}; it must be a percentage between 0 and "
        f"{100 * cpus} (100 per CPU), e.g. psutil.cpu_percent(interval=0.1)")

    ram = result["ram_used_mb"]
    assert _is_number(ram), f"sample_usage()['ram_used_mb'] is {ram!r}; it must be a number of MiB"
    rel = thresholds["ram_used_rel"]
    slack = thresholds.get("ram_used_abs_mb", 0.0)  # other processes move a small "used" by many percent
    low = max(0.0, min(min(before + after) * (1 - rel), min(before + after) - slack))
    high = max(max(before + after) * (1 + rel), max(before + after) + slack)
    hint = ""
    if low <= ram * 1e6 / 2**20 <= high:
        hint = " (it looks like MB of 10**6 bytes: divide bytes by 2**20)"
    elif low <= ram * 1024 <= high:
        hint = " (it looks like GiB: report MiB)"
    elif ram > hardware["ram_total_mb"] * 0.9 and max(after) < hardware["ram_total_mb"] * 0.7:
        hint = " (that is close to the total: report the memory in use, not the total or the free memory)"
    assert low <= ram <= high, (
        f"sample_usage()['ram_used_mb'] is {ram:.0f} but this machine had {min(before + after):.0f} to "
        f"{max(before + after):.0f} MiB in use around the call (accepted {low:.0f}..{high:.0f}){hint}; "
        "read the RAM in use now (total minus available), in MiB")

    gpus = result["gpus"]
    assert isinstance(gpus, list), f"sample_usage()['gpus'] is {type(gpus).__name__}; it must be a list"
    assert len(gpus) == len(hardware["gpus"]), (
        f"sample_usage() reports {len(gpus)} GPU(s) but this machine has {len(hardware['gpus'])}; "
        "one entry per GPU (an empty list without a GPU)")
    for index, gpu in enumerate(gpus):
        assert isinstance(gpu, dict) and {"utilization_pct", "memory_used_mb"} <= set(gpu), (
            f"sample_usage()['gpus'][{index}] is {gpu!r}; each entry needs utilization_pct and memory_used_mb")
        util = gpu["utilization_pct"]
        assert util is None or (_is_number(util) and 0 <= util <= 100), (
            f"sample_usage()['gpus'][{index}]['utilization_pct'] is {util!r}; it must be 0..100 "
            "(or null where the GPU cannot report it)")
        assert _is_number(gpu["memory_used_mb"]) and gpu["memory_used_mb"] >= 0, (
            f"sample_usage()['gpus'][{index}]['memory_used_mb'] is {gpu['memory_used_mb']!r}; "
            "it must be the MiB in use now")


def _cpu_sample(lab) -> tuple[float, float | None]:
    """The student's cpu_percent, and the machine's CPU use the grader read around the same call."""
    before = cpu_times()
    result = lab.call("hardware.sample_usage")
    after = cpu_times()
    cpu = result.get("cpu_percent") if isinstance(result, dict) else None
    assert _is_number(cpu), (
        f"sample_usage() returned {result!r}; it must return a dict whose cpu_percent is a number "
        "(the machine's CPU use in percent, e.g. psutil.cpu_percent(interval=0.1))")
    return float(cpu), cpu_busy_percent(before, after)


def test_sample_usage_under_load(lab, thresholds):
    lab.ping()  # the worker is up before the first window is read
    share, rise_min = thresholds["cpu_load_share"], thresholds["cpu_rise_min_pct"]
    idle = [_cpu_sample(lab) for _ in range(3)]
    with CpuLoad(seconds=thresholds["cpu_load_s"]) as load:
        load.wait_busy()
        loaded = [_cpu_sample(lab) for _ in range(3)]
    s0 = statistics.median(s for s, _ in idle)
    s1 = statistics.median(s for s, _ in loaded)
    t0 = statistics.median(t for _, t in idle if t is not None) if any(t is not None for _, t in idle) else None
    t1 = statistics.median(t for _, t in loaded if t is not None) if any(t is not None for _, t in loaded) else None
    if t1 is None:  # the grader's own reading failed: an error of the grader, scored as such
        raise RuntimeError("the machine's CPU times did not move during the samples")
    samples = ", ".join(f"{s:g}" for s, _ in loaded)
    assert s1 >= share * t1, (
        f"while a CPU-heavy run kept this machine {t1:.0f}% busy, sample_usage() reported cpu_percent "
        f"{samples} (at least {share * t1:.0f} expected; {s0:g} before the run): sample the whole "
        "machine's CPU use over a short interval (e.g. psutil.cpu_percent(interval=0.1)), not a constant "
        "and not only your own process")
    if t0 is not None and t1 - t0 >= rise_min:
        assert s1 - s0 >= share * (t1 - t0), (
            f"sample_usage()'s cpu_percent did not follow the load: {s0:g} before and {s1:g} during a "
            f"CPU-heavy run, while this machine went from {t0:.0f}% to {t1:.0f}% busy (a rise of at least "
            f"{share * (t1 - t0):.0f} points expected); sample the CPU use now, over a short interval, "
            "not a stale or made-up figure")
