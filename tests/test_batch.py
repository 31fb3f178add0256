"""``python -m grading batch``: rows for good and broken submissions, resume after a kill, overrides, Ray.

Grades only the ``hardware`` checkpoint (a few seconds per submission) to stay fast on 2 cores.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from grading.batch.discovery import discover, parse_student
from grading.batch.manifest import Manifest
from grading.batch.safezip import UnsafeZipError, ZipLimits, safe_extract
from grading.context import REPO_ROOT

pytestmark = pytest.mark.slow


def batch_cli(*args: str, timeout: float = 400) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "grading", "batch", *args], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=timeout)


def read_rows(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="") as handle:
        return {row["student_id"]: row for row in csv.DictReader(handle)}


def zip_folder(folder: Path, target: Path, prefix: str = "") -> None:
    with zipfile.ZipFile(target, "w") as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                archive.write(path, prefix + path.relative_to(folder).as_posix())


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("batch-src")
    shutil.copytree(REPO_ROOT / "reference", src / "doe_jane_12345_67890_lab", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO_ROOT / "student_template", src / "roe_rick_23456_lab", ignore=shutil.ignore_patterns("__pycache__"))
    (src / "empty_emma_67890_lab").mkdir()
    (src / "empty_emma_67890_lab" / "notes.txt").write_text("forgot the code")
    zip_folder(REPO_ROOT / "reference", src / "zip_zoe_56789_lab.zip", prefix="my-lab/")   # wrapper folder
    (src / "bad_bob_34567_lab.zip").write_bytes(b"PK\x03\x04 this is not really a zip")
    with zipfile.ZipFile(src / "evil_eve_45678_lab.zip", "w") as archive:
        archive.writestr("inference_lab/__init__.py", "")
        archive.writestr("../../escaped.txt", "outside")
    return src


@pytest.fixture(scope="module")
def graded(source: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess, Path]:
    out = tmp_path_factory.mktemp("batch-out")
    return batch_cli(str(source), "--out", str(out), "--only", "hardware", "--jobs", "3", "--seed", "5", "-q"), out


def test_every_submission_is_a_row_with_the_right_score_or_reason(graded) -> None:
    proc, out = graded
    assert proc.returncode == 1, proc.stderr      # 1: some submissions could not be graded
    rows = read_rows(out / "grades.csv")
    assert set(rows) == {"12345", "23456", "34567", "45678", "56789", "67890"}
    assert rows["12345"]["score"] == "5.0" and rows["12345"]["hardware"] == "5.0" and rows["12345"]["status"] == "ok"
    assert rows["56789"]["score"] == "5.0", rows["56789"]          # zip with a wrapper folder
    assert rows["23456"]["score"] == "0.0" and rows["23456"]["status"] == "ok"
    assert "not a readable zip" in rows["34567"]["status"] and rows["34567"]["score"] == "0.0"
    assert "unsafe path in the zip" in rows["45678"]["status"] and rows["45678"]["score"] == "0.0"
    assert "no inference_lab/ package" in rows["67890"]["status"]
    assert not list(out.parent.rglob("escaped.txt"))               # nothing was written outside
    for key in rows:
        folder = out / "submissions" / key
        for name in ("report.json", "report.md", "report.html", "results.json", "junit.xml", "graded.json"):
            assert (folder / name).stat().st_size > 0, (key, name)
    canvas = (out / "canvas.csv").read_text().splitlines()
    assert canvas[0].startswith("Student,ID,SIS User ID") and canvas[1].startswith("Points Possible")
    assert "doe_jane,12345,,,,5" in canvas
    html = (out / "summary.html").read_text()
    assert "Most-failed tests" in html and "hardware" in html and "unsafe path" in html
    assert (out / "histogram.png").stat().st_size > 1000 and (out / "pass_rates.png").stat().st_size > 1000
    assert all(count == 1 for count in Manifest(out / "manifest.jsonl").done_counts().values())


def test_rerun_skips_what_is_done_and_overrides_apply_without_regrading(graded, tmp_path: Path, source: Path) -> None:
    _, out = graded
    before = (out / "submissions" / "12345" / "graded.json").read_text()
    overrides = tmp_path / "overrides.csv"
    overrides.write_text("student_id,target,points,reason\n"
                         "12345,hardware.test_fits,0,copied from a classmate\n"
                         "23456,hardware,3,partial credit after review\n"
                         "23456,total,+1,late-day bonus\n"
                         "99999,total,+1,not in this batch\n")
    proc = batch_cli(str(source), "--out", str(out), "--only", "hardware", "--overrides", str(overrides), "-q")
    assert "0 graded now, 6 already graded" in proc.stdout, proc.stdout + proc.stderr
    assert "99999" in proc.stdout                                    # reported, not silently dropped
    rows = read_rows(out / "grades.csv")
    assert rows["12345"]["score"] == "4.0" and rows["12345"]["hardware"] == "4.0"
    assert rows["23456"]["score"] == "4.0" and rows["23456"]["hardware"] == "3.0"
    report = json.loads((out / "submissions" / "12345" / "report.json").read_text())
    fits = next(t for c in report["checkpoints"] for t in c["tests"] if t["name"] == "test_fits")
    assert fits["score"] == 0 and "copied from a classmate" in fits["message"]
    assert (out / "submissions" / "12345" / "graded.json").read_text() == before   # the grading is kept
    manifest = Manifest(out / "manifest.jsonl")
    assert set(manifest.latest_overrides()) == {"12345", "23456"}
    assert all(count == 1 for count in manifest.done_counts().values())
    bad = tmp_path / "bad.csv"
    bad.write_text("student_id,target,points,reason\n12345,hardwre,1,typo\n")
    proc = batch_cli(str(source), "--out", str(out), "--only", "hardware", "--overrides", str(bad), "-q")
    assert proc.returncode == 2 and "no checkpoint 'hardwre'" in proc.stderr and "line 2" in proc.stderr


def test_killed_batch_resumes_to_the_same_grades_without_grading_twice(tmp_path: Path) -> None:
    src = tmp_path / "src"
    for n in range(3):
        shutil.copytree(REPO_ROOT / "reference", src / f"student_s{n}_1000{n}", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO_ROOT / "student_template", src / "student_t_20000", ignore=shutil.ignore_patterns("__pycache__"))
    args = ["--only", "hardware", "--seed", "11", "-q"]
    whole = batch_cli(str(src), "--out", str(tmp_path / "whole"), "--jobs", "4", *args)
    assert whole.returncode == 0, whole.stderr
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "grading", "batch", str(src), "--out", str(out), "--jobs", "1", *args],
                            cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and not Manifest(out / "manifest.jsonl").done_counts():
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)          # the batch and the grading it had in flight
        proc.wait()
    first = Manifest(out / "manifest.jsonl")
    assert 1 <= len(first.done_counts()) < 4, "the kill should land half-way"
    resumed = batch_cli(str(src), "--out", str(out), "--jobs", "2", *args)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{len(first.done_counts())} already graded" in resumed.stdout

    def without_durations(path: Path) -> list[list[str]]:
        return [row[:-1] for row in csv.reader(path.read_text().splitlines())]

    assert without_durations(out / "grades.csv") == without_durations(tmp_path / "whole" / "grades.csv")
    counts = Manifest(out / "manifest.jsonl").done_counts()
    assert len(counts) == 4 and all(count == 1 for count in counts.values()), counts


def test_unknown_source_and_single_submission_are_clear_errors(tmp_path: Path) -> None:
    proc = batch_cli(str(tmp_path / "nope"), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2 and "does not exist" in proc.stderr
    proc = batch_cli(str(REPO_ROOT / "reference"), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2 and "looks like one submission" in proc.stderr


def test_student_ids_from_export_names_and_gradescope_metadata(tmp_path: Path) -> None:
    assert parse_student("doe_jane_LATE_12345_67890_lab") == ("12345", "doe_jane")
    assert parse_student("Jane Doe_12345_assignsubmission_file_") == ("12345", "Jane Doe")
    export = tmp_path / "export.zip"
    with zipfile.ZipFile(export, "w") as archive:
        archive.writestr("assignment_1_export/submission_metadata.yml",
                         "submission_111:\n  :submitters:\n  - :name: Jane Doe\n    :sid: 'A42'\n"
                         "    :email: jane@example.edu\n  :created_at: 2026-01-01\n")
        archive.writestr("assignment_1_export/submission_111/inference_lab/__init__.py", "")
        archive.writestr("assignment_1_export/submission_222/inference_lab/__init__.py", "")
    subs, _ = discover(export, work=tmp_path / "work")
    assert [(s.student_id, s.name, s.kind) for s in subs] == [("A42", "Jane Doe", "dir"),
                                                              ("submission_222", "", "dir")]
    again, _ = discover(export, work=tmp_path / "work")             # extracted once, same hashes
    assert [s.content_hash for s in again] == [s.content_hash for s in subs]


def test_safe_extract_refuses_bombs_and_links(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("big.bin", b"\0" * (4 * 2**20))
    with pytest.raises(UnsafeZipError, match="zip bomb"):
        safe_extract(bomb, tmp_path / "b", ZipLimits(max_total_bytes=2**20))
    assert not (tmp_path / "b").exists()
    many = tmp_path / "many.zip"
    with zipfile.ZipFile(many, "w") as archive:
        for n in range(30):
            archive.writestr(f"f{n}.txt", "x")
    with pytest.raises(UnsafeZipError, match="30 entries"):
        safe_extract(many, tmp_path / "m", ZipLimits(max_entries=20))
    linked = tmp_path / "link.zip"
    with zipfile.ZipFile(linked, "w") as archive:
        info = zipfile.ZipInfo("inference_lab/secret")
        info.create_system, info.external_attr = 3, (0o120777 << 16)
        archive.writestr(info, "/etc/passwd")
        archive.writestr("inference_lab/a.py", "x = 1\n")
    notes = safe_extract(linked, tmp_path / "l")
    assert not (tmp_path / "l" / "inference_lab" / "secret").exists() and "symbolic link" in notes[0]
    absolute = tmp_path / "abs.zip"
    with zipfile.ZipFile(absolute, "w") as archive:
        archive.writestr("/etc/cron.d/x", "x")
    with pytest.raises(UnsafeZipError, match="unsafe path"):
        safe_extract(absolute, tmp_path / "a")


def test_ray_executor_runs_the_same_grading(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    if not shutil.which("unshare") or subprocess.run(["unshare", "-rn", "true"], capture_output=True).returncode:
        pytest.skip("no loopback-only network namespace here (unshare -rn); local Ray would listen on every address")
    src = tmp_path / "src"
    shutil.copytree(REPO_ROOT / "reference", src / "a_b_11111", ignore=shutil.ignore_patterns("__pycache__"))
    (src / "bad_c_22222.zip").write_bytes(b"nope")
    out = tmp_path / "out"
    # Ray binds some servers to every address: run it in a network namespace that has only loopback
    command = (f"ip link set lo up && exec {sys.executable} -m grading batch {src} --out {out} --only hardware "
               f"--jobs 2 -q --executor ray")
    proc = subprocess.run(["unshare", "-rn", "sh", "-c", command], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    rows = read_rows(out / "grades.csv")
    assert rows["11111"]["score"] == "5.0" and "not a readable zip" in rows["22222"]["status"]
    assert [r["executor"] for r in Manifest(out / "manifest.jsonl").events("batch")] == ["ray"]
