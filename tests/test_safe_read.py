"""grading/safe_read.py: how the grader reads a submission's files in its own process."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from grading.safe_read import RefusedFile, read_capped, read_regular, read_regular_text


def test_a_regular_file_is_read_within_its_limit(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "f.json").write_bytes(b"{}" * 10)
    assert read_regular(tmp_path / "a" / "f.json", 20, root=tmp_path) == b"{}" * 10
    assert read_regular_text(tmp_path / "a" / "f.json", 20) == "{}" * 10
    assert read_capped(tmp_path / "a" / "f.json", 4, root=tmp_path) == (b"{}{}", True)
    with pytest.raises(RefusedFile, match="is larger than 19 bytes") as info:
        read_regular(tmp_path / "a" / "f.json", 19, root=tmp_path)
    assert info.value.kind == "too-large"
    with pytest.raises(FileNotFoundError):
        read_regular(tmp_path / "a" / "missing.json", 20, root=tmp_path)


def test_links_and_special_files_are_refused_without_being_opened(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.json").write_text("{}")
    root = tmp_path / "sub"
    (root / "results").mkdir(parents=True)
    (root / "results" / "link.json").symlink_to(outside / "secret.json")
    (root / "linked").symlink_to(outside, target_is_directory=True)
    (root / "zero.json").symlink_to("/dev/zero")
    os.mkfifo(root / "results" / "fifo.json")       # would block an ordinary open() for ever
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(root / "sock.json"))
        cases = {
            root / "results" / "link.json": ("link", "is a symbolic link"),
            root / "zero.json": ("link", "is a symbolic link"),
            root / "results" / "fifo.json": ("special", "is a named pipe (FIFO), not a regular file"),
            root / "sock.json": ("special", "is a socket (a special file), not a regular file"),
            root / "results": ("special", "is a folder, not a regular file"),
            root / "linked" / "secret.json": ("link", "is in a folder that is a symbolic link (linked/)"),
        }
        for path, (kind, words) in cases.items():
            with pytest.raises(RefusedFile) as info:
                read_regular(path, 1024, root=root)
            assert info.value.kind == kind and words in info.value.reason, (path, info.value.reason)
    # without root only the file itself is checked: a link is still refused
    with pytest.raises(RefusedFile, match="symbolic link"):
        read_regular(root / "results" / "link.json", 1024)
    with pytest.raises(RefusedFile, match="outside the folder"):
        read_regular(outside / "secret.json", 1024, root=root)
    with pytest.raises(RefusedFile, match="not a plain path"):
        read_regular(Path("results") / ".." / ".." / "outside" / "secret.json", 1024, root=root)
