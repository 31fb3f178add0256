"""Hostile student functions, one per misbehaviour the sandbox must contain (copied into tmp submissions)."""
import os
import sys
import time


def well_behaved(x):
    return {"x": x, "token": os.environ.get("HF_TOKEN"), "home": os.environ["HOME"], "cwd": os.getcwd()}


def not_implemented():
    raise NotImplementedError


def infinite_loop():
    while True:
        pass


def fork_bomb():
    children = 0
    try:
        while True:
            if os.fork() == 0:
                time.sleep(60)
                os._exit(0)
            children += 1
    except OSError:
        return children


def allocate_1gb():
    block = bytearray(1024**3)
    return len(block)


def print_100mb():
    line = "x" * 1_000_000
    for _ in range(100):
        print(line)
    return "done"


def hard_exit():
    os._exit(3)


def soft_exit():
    sys.exit(0)


def segfault():
    import ctypes
    ctypes.string_at(0)


def write_outside(path):
    try:
        with open(path, "w") as handle:
            handle.write("pwned")
        return "written"
    except OSError as exc:
        return f"blocked: {exc.strerror}"


def read_grader_secrets(paths):
    found = {}
    for path in paths:
        try:
            with open(path) as handle:
                found[path] = handle.read(100)
        except OSError:
            pass
    return found


def non_json():
    return {1, 2, 3}


def nan_result():
    return float("nan")


def huge_result():
    return "y" * 20_000_000


def environment():
    return dict(os.environ)


def escape_process_group():
    pid = os.fork()
    if pid == 0:
        os.setsid()
        time.sleep(120)
        os._exit(0)
    return pid


def big_file():
    try:
        with open("big.bin", "wb") as handle:
            handle.write(b"\0" * (200 * 2**20))
        return "written"
    except OSError as exc:
        return f"blocked: {exc.strerror}"


def fill_folder(stop_mb=400):
    """Many files, each under the file-size limit, until an error or stop_mb (a disk filler)."""
    chunk = b"\xa5" * (8 * 2**20)
    written = index = 0
    while written < stop_mb * 2**20:
        with open(f"fill-{index}.bin", "wb") as handle:
            handle.write(chunk)
        written += len(chunk)
        index += 1
    return written
