"""Batch throughput: N copies of the reference, full grading on the sim tier, default --jobs.

Prints submissions/minute, peak memory per worker (RSS of one submission's grading processes: its
pytest child, simulators, sandbox workers, notebook kernels, summed while they run) and the overhead
of isolation (--isolation auto, i.e. bubblewrap + cgroups where available, vs --isolation process)
on a subset.

    python benchmarks/bench_batch.py                 # 50 copies, subset of 4 for isolation
    python benchmarks/bench_batch.py --n 10 --only auth,hardware --subset 2
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

REPO_ROOT = Path(__file__).resolve().parent.parent


def make_source(folder: Path, n: int) -> Path:
    src = folder / "src"
    for i in range(n):
        shutil.copytree(REPO_ROOT / "reference", src / f"copy_{i:03d}_{10000 + i}",
                        ignore=shutil.ignore_patterns("__pycache__"))
    return src


class RssSampler(threading.Thread):
    """Every 0.5 s: the RSS of each grading child's process tree (one tree per submission in flight)."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.stop_flag = pid, threading.Event()
        self.peak_worker_mb = 0.0
        self.peak_total_mb = 0.0
        self.peak_cpu = 0.0
        self.busy_cpu_s = 0.0   # the machine's busy CPU seconds over the run (set when it ends)
        self.sampler_cpu_s = 0.0

    def run(self) -> None:
        psutil.cpu_percent(None)
        while not self.stop_flag.wait(0.5):
            started = time.process_time()
            # One pass over /proc per tick (psutil's children(recursive=True) per submission rescans
            # every process each time: ~6 % of the machine with 8 submissions in flight).
            parents: dict[int, list[int]] = {}
            rss_of: dict[int, int] = {}
            for proc in psutil.process_iter(["ppid", "memory_info"]):
                parents.setdefault(proc.info["ppid"] or 0, []).append(proc.pid)
                if proc.info["memory_info"] is not None:
                    rss_of[proc.pid] = proc.info["memory_info"].rss
            if self.pid not in rss_of:
                return

            def tree_rss(pid: int) -> int:
                return rss_of.get(pid, 0) + sum(tree_rss(child) for child in parents.get(pid, []))

            total = rss_of[self.pid]
            for child in parents.get(self.pid, []):
                rss = tree_rss(child)
                total += rss
                self.peak_worker_mb = max(self.peak_worker_mb, rss / 2**20)
            self.peak_total_mb = max(self.peak_total_mb, total / 2**20)
            self.peak_cpu = max(self.peak_cpu, psutil.cpu_percent(None))
            self.sampler_cpu_s += time.process_time() - started


def busy_cpu_s() -> float:
    """CPU seconds the whole machine has spent busy (every process, all CPUs), as /proc/stat counts them."""
    times = psutil.cpu_times()
    total = sum(times) - getattr(times, "guest", 0.0) - getattr(times, "guest_nice", 0.0)
    return total - times.idle - getattr(times, "iowait", 0.0)


def run_batch(src: Path, out: Path, extra: list[str]) -> tuple[float, RssSampler, str]:
    command = [sys.executable, "-m", "grading", "batch", str(src), "--out", str(out), "-q", "--seed", "1", *extra]
    started = time.monotonic()
    cpu_before = busy_cpu_s()
    proc = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    sampler = RssSampler(proc.pid)
    sampler.start()
    output, _ = proc.communicate()
    sampler.stop_flag.set()
    elapsed = time.monotonic() - started
    sampler.busy_cpu_s = busy_cpu_s() - cpu_before
    if proc.returncode not in (0, 1):
        raise SystemExit(f"batch failed (exit {proc.returncode}):\n{output[-3000:]}")
    return elapsed, sampler, output


def scores(out: Path) -> list[str]:
    import csv

    with open(out / "grades.csv", newline="") as handle:
        return [row["score"] for row in csv.DictReader(handle)]


def lost_points(out: Path) -> list[str]:
    """Each test that lost points in some submission, with how often: timing items under CPU contention."""
    import collections
    import json

    lost: collections.Counter = collections.Counter()
    for report in sorted((out / "submissions").glob("*/report.json")):
        for checkpoint in json.loads(report.read_text()).get("checkpoints", []):
            for test in checkpoint.get("tests", []):
                if test.get("outcome") == "failed":
                    lost[f"{checkpoint['id']}::{test['name']}: {str(test.get('message'))[:700]}"] += 1
    return [f"{count}x {what}" for what, count in lost.most_common()]


def phases(out: Path) -> str:
    """How long the batch's first pass took, and the regrades after it (from the manifest's times)."""
    import datetime
    import json

    events = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines() if line.strip()]

    def at(event: dict) -> float:
        return datetime.datetime.fromisoformat(event["at"].replace("Z", "+00:00")).timestamp()

    start = at(next(e for e in events if e["event"] == "batch"))
    first = [at(e) for e in events if e["event"] == "done" and "graded_alone_after" not in e]
    again = [at(e) for e in events if e["event"] == "done" and "graded_alone_after" in e]
    text = f"first pass {max(first) - start:.1f} s"
    return text + (f", then {len(again)} graded again alone in {max(again) - max(first):.1f} s" if again else "")


def lost_first(out: Path) -> list[str]:
    """Each timing item a copy lost while the batch ran (before it was graded again alone), with how often."""
    import collections
    import json

    lost: collections.Counter = collections.Counter()
    example: dict[str, str] = {}
    for report in sorted((out / "submissions").glob("*/report.json")):
        for note in json.loads(report.read_text()).get("notes", []):
            if "graded again alone (" in note:
                text = note.split("were graded: ", 1)[-1]
                found = list(re.finditer(r"(?:^|; )(\w+\.test_\w+(?:\[[^\]]*\])?): ", text))
                for match, after in zip(found, [*found[1:], None]):
                    lost[match[1]] += 1
                    example.setdefault(match[1], text[match.end():after.start() if after else None][:450])
    return [f"{count}x {what} (e.g. {example[what]})" for what, count in lost.most_common()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=50)
    parser.add_argument("--subset", type=int, default=4, help="copies graded twice for the isolation overhead")
    parser.add_argument("--only", default=None)
    parser.add_argument("--jobs", type=int, default=None, help="default: the batch's own default")
    args = parser.parse_args()
    extra = (["--only", args.only] if args.only else []) + (["--jobs", str(args.jobs)] if args.jobs else [])
    load = os.getloadavg()[0]
    print(f"machine: {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.1f} GiB RAM, load {load:.2f}")
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        tmp_path = Path(tmp)
        src = make_source(tmp_path, args.n)
        elapsed, sampler, output = run_batch(src, tmp_path / "out", extra)
        jobs = re.search(r"(\d+) at a time", output)
        got = scores(tmp_path / "out")
        print(f"batch of {args.n} reference copies (sim tier{', only ' + args.only if args.only else ''}): "
              f"{elapsed:.1f} s with --jobs {jobs[1] if jobs else '?'} -> {60 * args.n / elapsed:.1f} submissions/minute")
        print(f"  scores: {sorted(set(got))} (all {len(got)} equal: {len(set(got)) == 1})")
        again = sum("graded again alone" in r.read_text() for r in (tmp_path / "out" / "submissions").glob("*/report.json"))
        print(f"  graded again alone (timing items lost under load): {again} of {args.n}")
        for line in lost_points(tmp_path / "out"):
            print(f"  lost: {line}")
        print(f"  {phases(tmp_path / 'out')}")
        for line in lost_first(tmp_path / "out"):
            print(f"  lost in the batch, then graded again alone: {line}")
        print(f"  peak RSS of one submission's grading processes: {sampler.peak_worker_mb:.0f} MiB; "
              f"whole batch: {sampler.peak_total_mb:.0f} MiB; peak CPU {sampler.peak_cpu:.0f} %")
        cores = os.cpu_count() or 1
        print(f"  CPU: {sampler.busy_cpu_s / args.n:.1f} s per submission (the whole machine's busy time, this "
              f"sampler's {sampler.sampler_cpu_s:.1f} s included); {100 * sampler.busy_cpu_s / (elapsed * cores):.0f} % "
              f"of {cores} cores busy")
        if args.subset:
            sub = make_source(tmp_path / "subset", args.subset)
            times = {}
            for mode in ("process", "auto"):
                t, _, _ = run_batch(sub, tmp_path / f"out-{mode}", extra + ["--isolation", mode, "--allow-weak-isolation"])
                times[mode] = t
            overhead = 100 * (times["auto"] - times["process"]) / times["process"]
            print(f"isolation on {args.subset} copies: process {times['process']:.1f} s, auto (bwrap+cgroups "
                  f"where available) {times['auto']:.1f} s -> overhead {overhead:+.1f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
