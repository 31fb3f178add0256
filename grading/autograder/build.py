"""Build the zip Gradescope runs: ``setup.sh``, ``run_autograder``, ``autograder.json``, ``infergrade/``.

The grader's own source travels in the zip (``infergrade/``: ``grading/``, ``checkpoints/``,
``pyproject.toml``…) and ``setup.sh`` installs exactly that (``pip install -e``), so what Gradescope runs
is the version that built the zip — never whatever PyPI or the image has (otter-grader #509).
``autograder.json`` records the version, the checkpoints, the tier, the deadline and a hash of every
shipped file, which ``run_autograder`` checks before grading.

Usage::

    build_zip(Path("autograder.zip"), only="auth,hardware", timeout_s=540)
"""

from __future__ import annotations

import json
import stat
import time
import zipfile
from pathlib import Path

from grading import __version__
from grading.context import REPO_ROOT
from grading.packaging import grader_files, tree_hash

__all__ = ["build_zip", "SETUP_SH"]

SETUP_SH = r"""#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image.
# It installs infergrade {version} from the source shipped in this zip (never from PyPI).
set -euo pipefail
SOURCE="${{INFERGRADE_AUTOGRADER_ROOT:-/autograder}}/source"
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      python3 python3-pip python3-venv bubblewrap git >/dev/null) \
    || echo "warning: apt-get could not install python3/bubblewrap; grading uses the process-level sandbox" >&2
fi
python3 -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' \
  || {{ echo "infergrade needs Python 3.10+: choose a newer Gradescope base image (Ubuntu 22.04 or later)" >&2; exit 1; }}
export PIP_BREAK_SYSTEM_PACKAGES=1 PIP_DISABLE_PIP_VERSION_CHECK=1
python3 -m pip install -q -e "$SOURCE/infergrade"
cd / && python3 - "$SOURCE" <<'PY'
import sys
from pathlib import Path
import grading
where = Path(grading.__file__).resolve().parent
want = Path(sys.argv[1]).resolve() / "infergrade" / "grading"
if grading.__version__ != "{version}" or where != want:
    sys.exit(f"setup.sh: installed infergrade {{grading.__version__}} at {{where}}, expected {version} at {{want}}")
print(f"infergrade {{grading.__version__}} installed from {{where}}")
PY
"""


def _add(archive: zipfile.ZipFile, name: str, data: bytes, executable: bool = False) -> None:
    info = zipfile.ZipInfo(name, date_time=time.localtime()[:6])
    info.compress_type = zipfile.ZIP_DEFLATED
    mode = 0o755 if executable else 0o644
    info.external_attr = (stat.S_IFREG | mode) << 16
    info.create_system = 3
    archive.writestr(info, data)


def build_zip(out: Path, *, tier: str = "sim", only: str | None = None, timeout_s: float = 540.0,
              isolation: str = "auto") -> dict:
    """Write the autograder zip to ``out``; return its ``autograder.json`` dict."""
    from grading.rubric import load_rubric

    only_list = [p.strip() for p in only.split(",") if p.strip()] if only else None
    checkpoints = [c.id for c in load_rubric().select(only_list)]        # KeyError: unknown id
    files = grader_files(REPO_ROOT)
    config = {"grader_version": __version__, "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "tier": tier, "only": ",".join(only_list) if only_list else None, "checkpoints": checkpoints,
              "timeout_s": float(timeout_s), "isolation": isolation,
              "source_sha256": tree_hash(REPO_ROOT, files), "files": files}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    with zipfile.ZipFile(tmp, "w") as archive:
        _add(archive, "setup.sh", SETUP_SH.format(version=__version__).encode(), executable=True)
        script = (Path(__file__).with_name("run_autograder.py")).read_bytes()
        _add(archive, "run_autograder", script, executable=True)
        _add(archive, "autograder.json", (json.dumps(config, indent=2) + "\n").encode())
        for rel in files:
            _add(archive, f"infergrade/{rel}", (REPO_ROOT / rel).read_bytes())
    tmp.replace(out)
    return config
