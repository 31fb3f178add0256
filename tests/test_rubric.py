"""The rubric is the one source of points: it must agree with DESIGN.md and with checkpoints/."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from grading.context import CHECKPOINTS_DIR
from grading.rubric import RubricError, load_rubric

DESIGN_POINTS = {"auth": 10, "hf_chat": 10, "hf_image": 10, "provider_strategies": 10, "failover": 15,
                 "ollama": 10, "vllm": 10, "throughput": 10, "hardware": 5, "analysis": 5, "notebooks": 5}


def _test_functions(module: Path) -> set[str]:
    tree = ast.parse(module.read_text())
    return {node.name for node in tree.body
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test_")}


def test_points_match_design() -> None:
    rubric = load_rubric()
    assert {c.id: c.points for c in rubric.checkpoints} == DESIGN_POINTS
    assert rubric.max_score == 100


def test_every_checkpoint_has_a_module_and_every_test_has_points() -> None:
    rubric = load_rubric()
    for checkpoint in rubric.checkpoints:
        module = CHECKPOINTS_DIR / f"test_{checkpoint.id}.py"
        assert module.exists(), f"missing {module}"
        automatic = {t.name for t in checkpoint.tests if not t.manual}
        assert _test_functions(module) == automatic, f"{module.name} and rubric.toml disagree"


@pytest.mark.parametrize("bad, message", [
    ('[checkpoints.a]\ntitle="A"\npoints=3\ntests=[{name="test_x", points=2}]\n', "add up to"),
    ('[checkpoints.a]\ntitle="A"\npoints=2\ntests=[{name="test_x", points=2, visibility="secret"}]\n', "visibility"),
    ('[checkpoints.a]\ntitle="A"\npoints=2\ntests=[{name="test_x", points=2, pionts=1}]\n', "unknown key"),
    ('[checkpoints.a]\ntitle="A"\npoints=2\nlimits={memory=5}\ntests=[]\n', "unknown limit"),
])
def test_inconsistent_rubrics_are_refused(tmp_path: Path, bad: str, message: str) -> None:
    path = tmp_path / "rubric.toml"
    path.write_text(bad)
    with pytest.raises((RubricError, ValueError), match=message):
        load_rubric(path)
