"""Tests of grading.reports: every format rendered from one report dict, hostile text included."""

from __future__ import annotations

import copy
import csv
import io
import json
import math
import os
import re
import xml.etree.ElementTree as ET

import pytest
import xmlschema
from rich.console import Console

from grading.reports import FILENAMES, write_all
from grading.reports.csv_report import write_grades_csv
from grading.reports.gradescope import failure_results, to_gradescope
from grading.reports.html import to_html
from grading.reports.json_report import atomic_write_text, read_report
from grading.reports.junit import XSD_PATH, to_junit_xml
from grading.reports.markdown import to_markdown
from grading.reports.schema import clean_text, validate_report
from grading.reports.terminal import print_summary

SECRET = "SECRET-HIDDEN-MESSAGE"
SECRET_NAME = "test_hidden_secret_name"
SCRIPT = "<script>alert(1)</script>"
BIG = "x" * 100_000


def _test(name, outcome="passed", score=2.0, max_score=2.0, visibility="visible", message="", description=""):
    return {"name": name, "description": description, "outcome": outcome, "score": score,
            "max_score": max_score, "visibility": visibility, "message": message, "duration_s": 0.12}


def _report(checkpoints, **extra):
    report = {
        "submission": "reference", "tier": "sim",
        "score": sum(c["score"] for c in checkpoints), "max_score": sum(c["max_score"] for c in checkpoints),
        "duration_s": 12.3, "hardware": {"cpu_count": 2, "ram_total_mb": 23976, "gpus": [], "hardware_class": "cpu"},
        "isolation": "bwrap(user,pid,mount)+cgroup(pids,memory)", "seed": 12345, "grader_version": "0.1.0",
        "created_at": "2026-11-26T01:02:03Z", "error": None, "checkpoints": checkpoints,
    }
    report.update(extra)
    return report


def _cp(cid, title, tests, status):
    return {"id": cid, "title": title, "score": sum(t["score"] for t in tests),
            "max_score": sum(t["max_score"] for t in tests), "status": status, "tests": tests}


@pytest.fixture
def passed():
    return _report([
        _cp("auth", "Authenticate without exposing tokens", [
            _test("test_get_token_reads_env", description="get_token() returns HF_TOKEN from the environment"),
            _test("test_mask[hf_abc]", score=3.0, max_score=3.0)], "passed"),
        _cp("hf_chat", "Chat inference via HF providers", [_test("test_chat", score=10.0, max_score=10.0)], "passed"),
    ])


@pytest.fixture
def partial():
    return _report([
        _cp("auth", "Authenticate without exposing tokens", [
            _test("test_visible_ok"),
            _test("test_visible_bad", "failed", 0.0, 2.0, message="get_token() returned None; read HF_TOKEN"),
            _test(SECRET_NAME, "failed", 0.0, 3.0, "hidden", message=SECRET, description="secret description"),
            _test("test_later", "error", 0.0, 1.0, "after_due_date", message="boom"),
        ], "partial"),
        _cp("analysis", "Articulate performance differences", [
            _test("test_report_claims"),
            _test("test_manual_review", "pending", 0.0, 3.0, message="pending manual review"),
            _test("test_skip", "skipped", 0.0, 1.0, message="needs a GPU"),
        ], "partial"),
    ])


@pytest.fixture
def errored():
    return _report([], score=0.0, max_score=0.0, error="worker crashed: MemoryError\nTraceback ...")


@pytest.fixture
def hostile():
    nasty = f"{SCRIPT} | a | b |\nline2 ``` fence\x00nul \x1b[31mred\x1b[0m [bold]markup[/bold] & &amp; ]]> \ud800"
    return _report([
        _cp("auth", f"Title | with pipe {SCRIPT}", [
            _test("test_one", "failed", 0.0, 2.0, message=nasty, description=f"desc |\nnewline {SCRIPT}"),
            _test("test_big", "error", 0.0, 2.0, message=BIG),
            _test("test_formula", "failed", 0.0, 1.0, message="=HYPERLINK(\"http://evil\")"),
        ], "failed"),
    ], submission=f"{SCRIPT}|=cmd()")


@pytest.fixture
def all_reports(passed, partial, errored, hostile):
    return [passed, partial, errored, hostile]


# --- schema ----------------------------------------------------------------------------------

def test_schema_accepts_good_reports(all_reports):
    for report in all_reports:
        validate_report(report)


@pytest.mark.parametrize("mutate, path", [
    (lambda r: r["checkpoints"][0]["tests"][1].__setitem__("score", "2.0"), "$.checkpoints[0].tests[1].score"),
    (lambda r: r["checkpoints"][0]["tests"][0].__setitem__("outcome", "ok"), "$.checkpoints[0].tests[0].outcome"),
    (lambda r: r.__setitem__("score", "15"), "$.score"),
    (lambda r: r.__setitem__("score", True), "$.score"),
    (lambda r: r["checkpoints"][1].__setitem__("status", "done"), "$.checkpoints[1].status"),
    (lambda r: r["checkpoints"][0]["tests"][0].__setitem__("visibility", "secret"), "visibility"),
    (lambda r: r.__setitem__("tier", "cloud"), "$.tier"),
    (lambda r: r.pop("checkpoints"), "$"),
    (lambda r: r.__setitem__("duration_s", math.nan), "$.duration_s"),
])
def test_schema_rejects_bad_reports(passed, mutate, path):
    mutate(passed)
    with pytest.raises(ValueError) as info:
        validate_report(passed)
    assert path in str(info.value)


def test_schema_rejects_non_dict():
    with pytest.raises(ValueError):
        validate_report([])  # type: ignore[arg-type]


# --- Gradescope -------------------------------------------------------------------------------

def _numbers_are_numbers(results):
    assert isinstance(results["score"], float) and isinstance(results["execution_time"], float)
    for t in results["tests"]:
        assert isinstance(t["score"], float) and isinstance(t["max_score"], float)
        assert isinstance(t.get("number", ""), str)


def test_gradescope_structure(partial):
    results = json.loads(json.dumps(to_gradescope(partial), allow_nan=False))
    _numbers_are_numbers(results)
    assert results["score"] == partial["score"]
    assert results["execution_time"] == 12.3
    assert results["output_format"] == "md" and results["visibility"] == "visible"
    assert results["stdout_visibility"] == "hidden"
    assert results["extra_data"]["tier"] == "sim" and results["extra_data"]["seed"] == 12345
    assert "bwrap" in results["extra_data"]["isolation"]
    tests = results["tests"]
    assert [t["number"] for t in tests] == ["1.1", "1.2", "1.3", "1.4", "2.1", "2.2", "2.3"]
    assert [t["visibility"] for t in tests[:4]] == ["visible", "visible", "hidden", "after_due_date"]
    assert all(t["output_format"] == "text" for t in tests)
    assert tests[0]["status"] == "passed" and tests[0]["output"] == ""
    assert tests[1]["status"] == "failed" and "HF_TOKEN" in tests[1]["output"]
    assert tests[1]["name"] == "Authenticate without exposing tokens: test_visible_bad"
    assert tests[1]["tags"] == ["auth"]
    pending = tests[5]
    assert pending["status"] == "failed" and pending["score"] == 0.0 and pending["max_score"] == 3.0
    assert pending["output"] == "Pending manual review"
    # the always-visible summary never reveals hidden messages or hidden points earned
    assert SECRET not in results["output"] and SECRET_NAME not in results["output"]
    assert "pending manual review" in results["output"]
    assert "Total" not in results["output"]  # tests shown later would make a total misleading


def test_gradescope_all_passed_total(passed):
    results = to_gradescope(passed)
    assert results["score"] == 15.0 and all(t["status"] == "passed" for t in results["tests"])
    assert "**Total: 15 / 15**" in results["output"]


def test_gradescope_error_report(errored):
    results = to_gradescope(errored)
    _numbers_are_numbers(results)
    assert results["score"] == 0.0
    assert results["tests"][0]["name"] == "Autograder failed"
    assert results["tests"][0]["visibility"] == "visible"
    assert "MemoryError" in results["tests"][0]["output"]


def test_gradescope_hostile_text(hostile):
    text = json.dumps(to_gradescope(hostile))
    results = json.loads(text)
    for t in results["tests"]:
        assert "\x00" not in t["output"] and "\x1b" not in t["output"] and len(t["output"]) < 25_000
    assert "<script>" not in results["output"]  # markdown summary: student text escaped
    assert "\\<script\\>" in results["output"]


def test_failure_results():
    results = json.loads(json.dumps(failure_results("disk full <b>", execution_time=3)))
    _numbers_are_numbers(results)
    assert results["score"] == 0.0 and results["execution_time"] == 3.0
    assert results["visibility"] == "visible" and results["stdout_visibility"] == "hidden"
    (test,) = results["tests"]
    assert test["name"] == "Autograder failed" and test["status"] == "failed"
    assert test["visibility"] == "visible" and "disk full <b>" in test["output"]
    assert test["output_format"] == "text"


# --- JUnit ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def junit_xsd():
    return xmlschema.XMLSchema(str(XSD_PATH))


def test_junit_validates_and_has_no_properties(all_reports, junit_xsd):
    for report in all_reports:
        xml = to_junit_xml(report)
        junit_xsd.validate(xml)
        assert "<properties" not in xml
        ET.fromstring(xml.encode("utf-8"))


def test_junit_counts_and_children(partial):
    root = ET.fromstring(to_junit_xml(partial).encode())
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("errors"), root.get("skipped")) == ("7", "2", "1", "2")
    auth, analysis = root.findall("testsuite")
    assert auth.get("name") == "auth" and auth.get("timestamp") == "2026-11-26T01:02:03"
    cases = auth.findall("testcase")
    assert {c.get("classname") for c in cases} == {"checkpoints.auth"}
    assert cases[0].get("time") == "0.120" and list(cases[0]) == []
    assert cases[1].find("failure").get("message").startswith("get_token()")
    assert cases[3].find("error") is not None
    pending = analysis.findall("testcase")[1].find("skipped")
    assert pending.get("message") == "pending manual review"


def test_junit_hostile_text_escaped(hostile, junit_xsd):
    xml = to_junit_xml(hostile)
    junit_xsd.validate(xml)
    assert "\x00" not in xml and "\x1b" not in xml and SCRIPT not in xml
    root = ET.fromstring(xml.encode())
    failure = root.find("testsuite/testcase/failure")
    assert SCRIPT in failure.text and "nul" in failure.text  # content preserved, just escaped
    assert "\n" not in failure.get("message")


def test_junit_error_report_is_an_error(errored, junit_xsd):
    xml = to_junit_xml(errored)
    junit_xsd.validate(xml)
    root = ET.fromstring(xml.encode())
    assert root.get("errors") == "1" and "MemoryError" in root.find(".//error").text


def test_junit_xsd_is_strict(junit_xsd):
    bad = ('<testsuites><testsuite name="a" tests="1" failures="0" errors="0">'
           '<testcase classname="c" name="n" time="0.1"><properties><property name="p" value="v"/>'
           '</properties></testcase></testsuite></testsuites>')
    assert not junit_xsd.is_valid(bad)
    assert not junit_xsd.is_valid('<testsuites><testsuite name="a" tests="x" failures="0" errors="0"/></testsuites>')


# --- HTML ---------------------------------------------------------------------------------------

def test_html_escapes_student_text(hostile):
    page = to_html(hostile)
    assert SCRIPT not in page and "<script" not in page.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "\x00" not in page and "\x1b" not in page
    assert "more characters]" in page and len(page) < 50_000  # the 100 KB message is cut


def test_html_hides_hidden_tests_and_is_self_contained(partial):
    page = to_html(partial)
    assert SECRET not in page and SECRET_NAME not in page and "secret description" not in page
    assert "hidden test" in page
    assert "get_token() returned None" in page  # visible failure message shown
    assert "Pending manual review" in page or "pending manual review" in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page) and "<link" not in page
    assert re.search(r'style="width: \d+(\.\d+)?%"', page)
    for text in ("reference", "12345", "bwrap", "2026-11-26T01:02:03Z", "sim"):
        assert text in page


def test_html_error_report(errored):
    page = to_html(errored)
    assert "Grading could not run" in page and "MemoryError" in page


# --- Markdown -----------------------------------------------------------------------------------

def _cells(line):
    return len(re.findall(r"(?<!\\)\|", line))


def _tables(md):
    tables, current = [], []
    for line in md.splitlines():
        if line.startswith("|"):
            current.append(line)
        elif current:
            tables.append(current)
            current = []
    return tables + ([current] if current else [])


@pytest.mark.parametrize("name", ["passed", "partial", "errored", "hostile"])
def test_markdown_tables_keep_their_columns(request, name):
    md = to_markdown(request.getfixturevalue(name))
    tables = _tables(md)
    assert tables
    for table in tables:
        assert len({_cells(line) for line in table}) == 1, table


def test_markdown_hostile_text(hostile):
    md = to_markdown(hostile)
    assert "\x00" not in md and "\x1b" not in md
    outside_fences = re.sub(r"(?ms)^(`{3,})text\n.*?^\1$", "", md)
    assert "<" not in outside_fences.replace("\\<", "")  # student HTML only inside code fences
    assert SCRIPT in md  # ...where it is shown literally
    assert len(md) < 30_000 and "more characters]" in md
    # the message goes in a fence longer than any backtick run inside it
    assert "````text" in md


def test_markdown_hides_hidden_and_shows_pending(partial):
    md = to_markdown(partial)
    assert SECRET not in md and SECRET_NAME not in md and "hidden test" in md
    assert "pending" in md and "get_token() returned None" in md
    assert md.startswith("# Grading report: reference")


# --- CSV ----------------------------------------------------------------------------------------

def test_csv_rows_and_formula_injection(tmp_path, passed, errored, hostile):
    rows = [dict(passed, student_id="s1"), dict(errored, student_id="@SUM(A1)"), dict(hostile, student_id="-2+3")]
    path = tmp_path / "grades.csv"
    write_grades_csv(rows, path, ["auth", "hf_chat"])
    with path.open(newline="", encoding="utf-8") as fh:
        table = list(csv.reader(fh))
    assert table[0] == ["student_id", "submission", "score", "max_score", "auth", "hf_chat", "status", "duration_s"]
    assert table[1] == ["s1", "reference", "15.0", "15.0", "5.0", "10.0", "ok", "12.3"]
    assert table[2][0] == "'@SUM(A1)" and table[2][4:6] == ["", ""]
    assert table[2][6].startswith("error: worker crashed") and "\n" not in table[2][6]
    assert table[3][0] == "'-2+3" and table[3][1] == "<script>alert(1)</script>|=cmd()"
    assert all(len(row) == 8 for row in table)
    assert not [p for p in tmp_path.iterdir() if p.name != "grades.csv"]


def test_csv_status_formula_is_neutralised(tmp_path, passed):
    write_grades_csv([dict(passed, submission="=1+1", error="=cmd|' /C calc'!A0")], tmp_path / "g.csv", [])
    row = list(csv.reader(io.StringIO((tmp_path / "g.csv").read_text(encoding="utf-8"))))[1]
    assert row[1] == "'=1+1" and row[4].startswith("error: ")


# --- terminal -----------------------------------------------------------------------------------

def test_terminal_summary(partial, hostile, errored):
    for report in (partial, hostile, errored):
        out = io.StringIO()
        print_summary(report, console=Console(file=out, width=200))
        text = out.getvalue()
        assert "Total" in text and SECRET not in text and "\x1b" not in text and "\x00" not in text
    out = io.StringIO()
    print_summary(partial, console=Console(file=out, width=200))
    assert "auth" in out.getvalue() and "get_token() returned None" in out.getvalue()
    partial["checkpoints"][0]["tests"][1]["message"] = "[bold red]markup[/] stays text"
    out = io.StringIO()
    print_summary(partial, console=Console(file=out, width=200))
    assert "[bold red]markup[/] stays text" in out.getvalue()


def test_terminal_hidden_only_failure(partial):
    partial["checkpoints"][0]["tests"] = [partial["checkpoints"][0]["tests"][2]]
    out = io.StringIO()
    print_summary(partial, console=Console(file=out, width=200))
    assert "hidden test failed" in out.getvalue() and SECRET not in out.getvalue()


# --- write_all and atomic writes ----------------------------------------------------------------

def test_write_all(tmp_path, partial, hostile, errored):
    for i, report in enumerate((partial, hostile, errored)):
        out = tmp_path / f"out{i}" / "nested"
        paths = write_all(report, out)
        assert set(paths) == {"json", "md", "html", "gradescope", "junit"}
        assert {p.name for p in out.iterdir()} == set(FILENAMES.values())
        assert read_report(paths["json"])["score"] == report["score"]
        assert json.loads(paths["gradescope"].read_text(encoding="utf-8"))["score"] == report["score"]
        ET.parse(paths["junit"])
        assert paths["html"].read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
        assert paths["md"].read_text(encoding="utf-8").startswith("# Grading report")


def test_write_all_rejects_invalid_without_writing(tmp_path, passed):
    bad = copy.deepcopy(passed)
    bad["score"] = "15"
    with pytest.raises(ValueError, match=r"\$\.score"):
        write_all(bad, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_atomic_write_keeps_old_file_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "results.json"
    atomic_write_text(target, "old")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        atomic_write_text(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


def test_clean_text():
    assert clean_text("a\x00b\r\nc\x1b[1;31md\x07e\u202ef") == "ab\ncdef"
    assert clean_text(None) == ""


def test_libraries_line():
    from grading.reports.markdown import libraries_line

    assert libraries_line({"huggingface_hub": "2.5.0", "openai": None}) == "huggingface_hub 2.5.0 · openai (absent)"
    assert libraries_line(None) == "" and libraries_line({}) == ""
    report = {"submission": "s", "tier": "sim", "score": 0, "max_score": 0, "checkpoints": [],
              "libraries": {"huggingface_hub": "2.5.0", "evil": "<script>"}}
    validate_report(report)
    assert "huggingface_hub 2.5.0" in to_html(report) and "<script>" not in to_html(report)
    with pytest.raises(ValueError, match="libraries"):
        validate_report({**report, "libraries": {"openai": 3}})

