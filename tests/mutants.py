"""Known-bad submissions for the grader's own tests, made from ``reference/`` at test time.

Each :class:`Mutant` is one realistic student mistake: a few text edits applied to a copy of the
reference solution (plus, for leaks, files a student might hand in by accident). Every edit's
``old_text`` must occur exactly once in its file, so when the reference changes under a mutant,
:func:`build` fails loudly (:class:`MutantOutOfDate`) instead of silently grading the reference.

The checkpoint tests (tests/test_checkpoint_<checkpoint>.py) build each mutant in a temporary folder,
grade it, and check that it loses points on ``expect_lost`` with messages containing
``expect_message``.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import nbformat

REFERENCE = Path(__file__).resolve().parents[1] / "reference"
# The fake token the leak mutants hand in (the shape of a real one; not a real token). Split so that
# this file itself never holds a token-shaped string.
FAKE = "hf_" + "FakeTokenForTestsOnlyNotRealAbcdEf"


class MutantOutOfDate(Exception):
    """An edit no longer applies: the reference changed and the mutant must be updated."""


@dataclass(frozen=True)
class Mutant:
    name: str
    checkpoint: str
    description: str                                   # the realistic mistake, one line
    edits: list[tuple[str, str, str]] = field(default_factory=list)   # (relative_file, old_text, new_text)
    add_files: dict[str, str] = field(default_factory=dict)           # relative path -> text
    expect_lost: tuple[str, ...] = ()                  # checkpoint tests that must lose points
    # for each test in expect_lost: the substrings its failure message must contain
    expect_message: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # the simulator seed it is graded with; None: a fresh random one each run (the mistake must show
    # whatever the seed, as in official grading)
    seed: int | None = 1
    # whether every test outside expect_lost must keep its points; False where one mistake may also
    # (legitimately, and depending on the seed) cost neighbouring items
    others_must_pass: bool = True
    # a reason this mistake cannot be told from the truth on this machine (then the test skips), or None
    undetectable_here: Callable[[], str | None] | None = None
    # environment variables of the grader's run (e.g. INFERGRADE_FAKE_NVML: GPUs from the fake NVML)
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        assert self.edits or self.add_files, f"{self.name}: a mutant must change something"
        assert self.expect_lost, f"{self.name}: a mutant must lose points somewhere"
        unknown = set(self.expect_message) - set(self.expect_lost)
        assert not unknown, f"{self.name}: expect_message names tests not in expect_lost: {unknown}"


def build(mutant: Mutant, dest: Path) -> Path:
    """Copy ``reference/`` (without caches) to ``dest``, apply the mutant there, and return ``dest``."""
    dest = Path(dest)
    shutil.copytree(REFERENCE, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for relative, old, new in mutant.edits:
        path = dest / relative
        text = path.read_text(encoding="utf-8") if path.is_file() else None
        count = 0 if text is None else text.count(old)
        if count != 1:
            where = "the file does not exist" if text is None else f"found {count} times"
            raise MutantOutOfDate(
                f"mutant {mutant.name!r}: reference/{relative}: the text to replace must occur exactly once, "
                f"but {where}. The reference changed: update the mutant in tests/mutants.py.\n"
                f"--- text ---\n{old}")
        path.write_text(text.replace(old, new), encoding="utf-8")
    for relative, text in mutant.add_files.items():
        path = dest / relative
        if path.exists():
            raise MutantOutOfDate(f"mutant {mutant.name!r}: reference/{relative} now exists; the mutant "
                                  "adds it. The reference changed: update the mutant in tests/mutants.py.")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return dest


def changed_files(built: Path) -> set[str]:
    """Relative paths whose content differs between ``built`` and ``reference/`` (or that only one has)."""
    def files(root: Path) -> dict[str, bytes]:
        return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*")
                if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}
    ours, theirs = files(Path(built)), files(REFERENCE)
    return {name for name in ours.keys() | theirs.keys() if ours.get(name) != theirs.get(name)}


def assert_mutant_differs(mutant: Mutant, built: Path) -> None:
    """``built`` (from :func:`build`) differs from the reference exactly in the mutant's files."""
    expected = {relative for relative, _, _ in mutant.edits} | set(mutant.add_files)
    assert changed_files(built) == expected, (mutant.name, changed_files(built), expected)
    for relative, old, new in mutant.edits:
        text = (Path(built) / relative).read_text(encoding="utf-8")
        assert new in text, (mutant.name, relative, new)


def _notebook_with_token_in_output() -> str:
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"display_name": "Python 3", "language": "python",
                                                           "name": "python3"}})
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Chat inference practice", id="b631362a"),
        nbformat.v4.new_code_cell(
            'from inference_lab.auth import get_token, mask\ntoken = get_token()\nprint("using token", token)',
            id="277787a4", execution_count=1,
            outputs=[nbformat.v4.new_output("stream", name="stdout", text=f"using token {FAKE}\n")]),
        nbformat.v4.new_code_cell(
            "print(mask(token))", id="c62de823", execution_count=2,
            outputs=[nbformat.v4.new_output("stream", name="stdout", text="hf_…cdEf\n")]),
    ]
    return nbformat.writes(nb)


def _ram_is_about(mib: int) -> str | None:
    from grading.hardware import detect_hardware

    total = detect_hardware()["ram_total_mb"]
    if abs(total - mib) <= 0.02 * total:
        return f"this machine has {total:.0f} MiB: a fixed {mib} cannot be told from the truth here"
    return None


AUTH = "inference_lab/auth.py"
HARDWARE = "inference_lab/hardware.py"
_FITS = "    return estimate_memory_gb(params_billion, bits_per_weight, **kw) <= float(memory_gb)\n"

_ALL = [
    # -- auth ---------------------------------------------------------------------------------------
    Mutant(
        "auth_hardcoded_token", "auth",
        "a token written in the source as a fallback",
        edits=[(AUTH, "    raise MissingTokenError(_MISSING_MESSAGE)\n",
                "    # TODO remove before handing in: my token, so the notebooks run anywhere\n"
                f'    return "{FAKE}"\n')],
        expect_lost=("test_no_token_in_files", "test_missing_token_error"),
        expect_message={
            "test_no_token_in_files": ("inference_lab/auth.py", "in source code", "hf_…cdEf"),
            "test_missing_token_error": ("returned", "MissingTokenError"),
        },
    ),
    Mutant(
        "auth_ignores_login_cache", "auth",
        "get_token() reads HF_TOKEN only, never the stored login",
        edits=[(AUTH, "    token = _token_from_login_cache()\n    if token:\n        return token\n", "")],
        expect_lost=("test_get_token_from_login_cache",),
        expect_message={"test_get_token_from_login_cache": ("stored", "huggingface_hub.get_token()")},
    ),
    Mutant(
        "auth_valueerror", "auth",
        'a missing token raises ValueError("no token") instead of MissingTokenError',
        edits=[(AUTH, "raise MissingTokenError(_MISSING_MESSAGE)", 'raise ValueError("no token")')],
        expect_lost=("test_missing_token_error",),
        expect_message={"test_missing_token_error": ("raised ValueError", "no token", "MissingTokenError")},
    ),
    Mutant(
        "auth_mask_whole_token", "auth",
        "mask() puts the whole token in its result",
        edits=[(AUTH, 'return f"{prefix}…{body[-4:]}"', 'return f"{prefix}…{token}"')],
        expect_lost=("test_mask_hides_token",),
        expect_message={"test_mask_hides_token": ("whole token", "'hf_' prefix and the last 4")},
    ),
    Mutant(
        "auth_notebook_output", "auth",
        "a notebook handed in with a saved output that prints the token",
        add_files={"scratch_chat.ipynb": _notebook_with_token_in_output()},
        expect_lost=("test_no_token_in_files",),
        expect_message={"test_no_token_in_files": ("scratch_chat.ipynb", "cell 2", "saved output",
                                                   "hf_…cdEf", "clear the outputs")},
    ),
    Mutant(
        "auth_dotenv", "auth",
        "a .env file holding the token is handed in",
        add_files={".env": f"# my local settings\nHF_TOKEN={FAKE}\n"},
        expect_lost=("test_no_token_in_files",),
        expect_message={"test_no_token_in_files": (".env, line 2", ".env file", "HF_TOKEN=hf_…cdEf",
                                                   ".gitignore")},
    ),
    # -- hardware -----------------------------------------------------------------------------------
    Mutant(
        "hardware_gib", "hardware",
        "GB taken as GiB (2**30 bytes) where *_gb are 10**9 bytes",
        edits=[(HARDWARE, "GB = 10**9\n", "GB = 2**30  # mistake: GiB, but *_gb are 10**9 bytes\n")],
        expect_lost=("test_estimate_weights",),
        expect_message={"test_estimate_weights": ("GiB",)},
    ),
    Mutant(
        "hardware_no_kv", "hardware",
        "the KV cache is left out of the memory estimate",
        edits=[(HARDWARE,
                "    kv_cache = (\n"
                "        2 * float(n_layers) * float(context_len) * float(hidden_size)\n"
                "        * float(kv_bits) / 8 * float(batch)\n"
                "    )\n"
                "    return (weights + kv_cache) * float(overhead) / GB\n",
                "    return weights * float(overhead) / GB  # mistake: the KV cache is forgotten\n")],
        expect_lost=("test_estimate_kv_cache", "test_estimate_real_models"),
        expect_message={"test_estimate_kv_cache": ("KV cache",),
                        "test_estimate_real_models": ("KV cache is missing",)},
    ),
    Mutant(
        "hardware_bits_as_bytes", "hardware",
        "bits per weight used as bytes (no / 8)",
        edits=[(HARDWARE, "weights = float(params_billion) * 1e9 * float(bits_per_weight) / 8\n",
                "weights = float(params_billion) * 1e9 * float(bits_per_weight)  # mistake: bits used as bytes\n")],
        expect_lost=("test_estimate_weights",),
        expect_message={"test_estimate_weights": ("bits",)},
    ),
    Mutant(
        "hardware_fixed_ram", "hardware",
        "detect() reports a made-up RAM size instead of this machine's",
        edits=[(HARDWARE, '"ram_total_mb": int(psutil.virtual_memory().total // MIB),',
                '"ram_total_mb": 16384,  # mistake: a made-up constant, not this machine')],
        expect_lost=("test_detect_matches_machine",),
        expect_message={"test_detect_matches_machine": ("ram_total_mb",)},
        undetectable_here=lambda: _ram_is_about(16384),
    ),
    Mutant(
        "hardware_fits_inverted", "hardware",
        "fits() compares the wrong way round",
        edits=[(HARDWARE, _FITS, "    return float(memory_gb) < estimate_memory_gb(params_billion, bits_per_weight, "
                                 "**kw)  # mistake: wrong side\n")],
        expect_lost=("test_fits",),
        expect_message={"test_fits": ("fits(",)},
    ),
    Mutant(
        "hardware_fits_no_overhead", "hardware",
        "fits() ignores the overhead it is given",
        edits=[(HARDWARE, _FITS, '    kw = {**kw, "overhead": 1.0}  # mistake: the overhead is ignored\n' + _FITS)],
        expect_lost=("test_fits",),
        expect_message={"test_fits": ("overhead",)},
    ),
    Mutant(
        "hardware_sample_constant", "hardware",
        "sample_usage() returns made-up constant numbers instead of sampling the machine",
        edits=[(HARDWARE, '    return {"cpu_percent": float(cpu), "ram_used_mb": int(ram_used // MIB), "gpus": gpus}\n',
                '    return {"cpu_percent": 12.5, "ram_used_mb": 4096, "gpus": gpus}  # mistake: made-up numbers\n')],
        expect_lost=("test_sample_usage_under_load",),
        expect_message={"test_sample_usage_under_load": ("CPU-heavy run", "12.5", "not a constant")},
    ),
    Mutant(
        "hardware_cpu_own_process", "hardware",
        "sample_usage() reads the CPU use of its own process, not of the machine",
        edits=[(HARDWARE, "    cpu = psutil.cpu_percent(interval=0.1)\n",
                "    cpu = psutil.Process().cpu_percent(interval=0.1)  # mistake: this process only\n")],
        expect_lost=("test_sample_usage_under_load",),
        expect_message={"test_sample_usage_under_load": ("CPU-heavy run", "not only your own process")},
    ),
    # GPU mistakes, graded with the fake NVML's one 24 GB and two 80 GB GPUs (these machines have none)
    Mutant(
        "hardware_gpus_never_read", "hardware",
        "detect() never asks NVML: only torch's CUDA devices (none with a CPU build of torch)",
        edits=[(HARDWARE, "    gpus = _nvml_gpus()\n    if gpus is None:\n        gpus = _torch_gpus()\n",
                "    gpus = _torch_gpus()  # mistake: NVML is never asked\n")],
        expect_lost=("test_detect_matches_machine",),
        expect_message={"test_detect_matches_machine": ("reports 0 GPU(s) but this machine has 3",
                                                        "NVIDIA A100-SXM4-80GB")},
        env={"INFERGRADE_FAKE_NVML": "mixed"},
    ),
    Mutant(
        "hardware_first_gpu_only", "hardware",
        "only the first GPU is read",
        edits=[(HARDWARE, "        for index in range(pynvml.nvmlDeviceGetCount()):\n",
                "        for index in range(min(1, pynvml.nvmlDeviceGetCount())):  # mistake: GPU 0 only\n")],
        expect_lost=("test_detect_matches_machine", "test_sample_usage"),
        expect_message={"test_detect_matches_machine": ("reports 1 GPU(s) but this machine has 3",),
                        "test_sample_usage": ("1 GPU(s)", "has 3")},
        env={"INFERGRADE_FAKE_NVML": "mixed"},
    ),
    Mutant(
        "hardware_gpu_memory_in_mb", "hardware",
        "GPU memory in MB (10**6 bytes) where *_mb are MiB",
        edits=[(HARDWARE, '"memory_total_mb": int(memory.total // MIB),',
                '"memory_total_mb": int(memory.total // 10**6),  # mistake: MB, not MiB')],
        expect_lost=("test_detect_matches_machine",),
        expect_message={"test_detect_matches_machine": ("MiB",)},
        env={"INFERGRADE_FAKE_NVML": "small"},
    ),
]



def _more_mutants() -> list[Mutant]:
    """Mutants of other checkpoints, kept beside their tests: ``tests/mutants_<checkpoint>.py``
    modules, each with a module-level ``MUTANTS: list[Mutant]``."""
    import importlib

    found: list[Mutant] = []
    for path in sorted(Path(__file__).parent.glob("mutants_*.py")):
        found.extend(importlib.import_module(path.stem).MUTANTS)
    return found


# A wrong memory estimate also makes fits() and the other estimate cases wrong.
_ALL = [replace(m, others_must_pass=False) if m.checkpoint == "hardware" else m for m in _ALL]
_ALL += _more_mutants()
MUTANTS: dict[str, Mutant] = {m.name: m for m in _ALL}
assert len(MUTANTS) == len(_ALL), "two mutants share a name"


def for_checkpoint(checkpoint: str) -> list[str]:
    """The names of one checkpoint's mutants, sorted (for ``pytest.mark.parametrize``)."""
    return sorted(name for name, m in MUTANTS.items() if m.checkpoint == checkpoint)
