"""infergrade: the autograder for the chapter on Hugging Face Inference Providers, Ollama and vLLM."""

__version__ = "0.1.0"
