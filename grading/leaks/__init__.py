"""Find Hugging Face tokens in a submission — reading it as data, running nothing from it.

``scan_submission(root)`` looks everywhere a token must never be (the ``auth`` checkpoint):

* every file under ``root``, regular files only (grading/safe_read.py; symlinks are not followed, so
  nothing outside ``root`` is ever read): the start of a text file is read as text (size-capped), and
  every byte of every file, binary ones and what is past that start included, is searched for the
  token's shape and the extra secrets (:mod:`.stream`); a file that could not be read makes the
  result incomplete;
* notebooks, parsed with nbformat: cell sources and cell outputs are reported separately (an output
  that shows a token is a leak even when the code that printed it looks harmless); a notebook that
  does not parse is scanned as plain text, and anything in a notebook outside its cells (metadata)
  is still found by a plain-text pass;
* ``.env`` files (``.env``, ``.env.local``, ``.env.example``, ``*.env``, ``.envrc``): handing one in
  with a token is a leak; a placeholder such as ``hf_your_token_here`` is not a token;
* the git repository (``root/.git``): every object in it — blobs of every version of every file,
  commit and tag messages, dangling objects left by an amend or a reset — plus the text files of
  ``.git`` itself (``config`` with a remote URL like ``https://user:hf_…@huggingface.co``, logs).

A *token* is anything matching ``hf_[A-Za-z0-9]{30,}`` (the shape of real user access tokens) or one
of ``extra_secrets`` (the grader's canary). Excerpts are masked (``hf_…w9Qz``): a full token is never
put in a result, a message or a log.

Other secrets (cloud keys, API tokens of other services, private keys, passwords in URLs) are found
by Yelp's maintained scanner `detect-secrets <https://github.com/Yelp/detect-secrets>`_, run on the
same text (files, notebook cells, git objects) with its format-specific plugins and its default
false-positive filters — not its entropy or keyword heuristics, which flag image data in notebook
outputs and hashes in results files. Its findings carry ``rule`` = the detect-secrets type (e.g.
"AWS Access Key"); the Hugging Face rule's carry ``rule = "hf-token"``. The secret itself is
masked in the excerpt just the same.

``scan_tree_for_secrets(root, secrets)`` is the runtime counterpart: the exact secrets (the canary)
in every file under ``root``, text or binary — for the files student code wrote while it ran.

The package, one job a module:

* :mod:`.matcher`: the Hugging Face rule (``TOKEN_RE``, the extra secrets), masking and :func:`redact`;
* :mod:`.detect`: the detect-secrets wrapper (the other secrets);
* :mod:`.model`: :class:`Leak` and :class:`ScanResult`;
* :mod:`.text`: :func:`scan_text`, both rules on one text;
* :mod:`.files`: reading files as data, walking the work tree, :func:`scan_tree_for_secrets`;
* :mod:`.stream`: :class:`~.stream.ByteScanner`, the Hugging Face rule over every byte, in chunks;
* :mod:`.notebooks`: notebooks, cell by cell;
* :mod:`.git`: the repository's objects, read with ``git cat-file`` only (its docstring says why);
* :mod:`.submission`: :func:`scan_submission`, all of the above on a submission.
"""

from __future__ import annotations

from grading.leaks.files import scan_tree_for_secrets
from grading.leaks.matcher import HF_RULE, TOKEN_RE, mask_secret, redact
from grading.leaks.model import Leak, ScanResult
from grading.leaks.submission import scan_submission
from grading.leaks.text import scan_text

__all__ = ["Leak", "ScanResult", "TOKEN_RE", "HF_RULE", "scan_submission", "scan_text", "scan_tree_for_secrets",
           "mask_secret", "redact"]
