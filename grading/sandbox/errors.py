"""Errors that describe what a student's code did wrong, in words a student can act on.

Every failure of student code reaches a checkpoint as a :class:`StudentCodeError`; the scoring plugin
turns it into a failed item whose message is ``str(error)``. Nothing here is ever a grader crash.
"""

from __future__ import annotations


class StudentCodeError(Exception):
    """Base class: the student's code failed in a way that costs the current item its points."""

    kind = "error"

    def __init__(self, message: str, *, target: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.target = target

    def __str__(self) -> str:
        return self.message


class NotImplementedByStudent(StudentCodeError):
    """The function still raises ``NotImplementedError`` (the template's stub)."""

    kind = "not_implemented"

    def __init__(self, target: str) -> None:
        super().__init__(f"not implemented: {target}", target=target)


class StudentRaised(StudentCodeError):
    """The student's function raised an exception (other than NotImplementedError).

    ``exc_type`` is the exception's class name and ``exc_mro`` the names of its classes, so a
    checkpoint can accept any subclass: ``"RuntimeError" in err.exc_mro``.
    """

    kind = "raised"

    def __init__(self, target: str, exc_type: str, exc_message: str, exc_mro: list[str],
                 traceback: str = "") -> None:
        text = f"{target} raised {exc_type}: {exc_message}".rstrip(": ")
        if traceback:
            text += f"\n{traceback}"
        super().__init__(text, target=target)
        self.exc_type = exc_type
        self.exc_message = exc_message
        self.exc_mro = exc_mro
        self.traceback = traceback


class ImportFailed(StudentRaised):
    """The student's module could not be imported (syntax error, missing dependency, ...)."""

    kind = "import_failed"


class CallTimeout(StudentCodeError):
    kind = "timeout"


class WorkerCrashed(StudentCodeError):
    """The worker process died during the call: ``os._exit``, a segfault, a kill."""

    kind = "crashed"


class MemoryLimitExceeded(StudentCodeError):
    kind = "memory"


class DiskLimitExceeded(StudentCodeError):
    kind = "disk"


class OutputLimitExceeded(StudentCodeError):
    kind = "output"


class BadResult(StudentCodeError):
    """The function returned something that is not plain JSON data (or too much of it)."""

    kind = "bad_result"


class SubmissionBudgetExceeded(StudentCodeError):
    """The submission used up its total time budget; remaining calls are not run."""

    kind = "budget"


class SandboxUnavailable(RuntimeError):
    """The grader could not start a worker at all (a grader or machine problem, not the student's)."""
