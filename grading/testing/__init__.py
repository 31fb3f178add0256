"""Stand-ins the grader's own tests use in place of hardware these machines do not have.

``fake_nvml/pynvml.py`` is an NVML (``nvidia-ml-py``) that reports GPUs described by the environment
variable ``INFERGRADE_FAKE_NVML``. It is switched on only by that variable, which the grader's tests set
in the grader's own environment (a submission cannot set it): ``grading.hardware`` then reads the GPUs
from the fake, and ``grading.hardware.worker_env`` puts the fake first on the worker's ``sys.path`` so
that a student's ``import pynvml`` sees the same GPUs. A report graded that way says so
(``hardware.fake_nvml``).
"""
