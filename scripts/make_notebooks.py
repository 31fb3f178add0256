"""Write the three practice notebooks into student_template/ (with TODOs) and reference/ (completed).

One source for both editions: each cell is (kind, reference source, template source or None when
the same, tags). Run ``python scripts/make_notebooks.py`` after changing a cell; the outputs are
empty (the grader executes the notebooks itself). The graded cells carry tags ``answer:<what>``
(checkpoints/test_notebooks.py says what each must show).
"""

from __future__ import annotations

from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
KERNEL = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
          "language_info": {"name": "python"}}

IMAGE = [
    ("md", """# Text-to-image with Hugging Face Inference Providers

Inference Providers run models for you behind one API: `InferenceClient(provider=...)` sends the request
to the provider you name (or lets Hugging Face pick one with `provider="auto"`). Image providers answer
in different shapes - raw JPEG bytes (`hf-inference`), base64 in JSON (`together`), a URL to download
(`fal-ai`) - and `InferenceClient.text_to_image` hides that: you always get a PIL image back.

Your token comes from the environment (`HF_TOKEN`, or `hf auth login`): never type it into a cell and
never print it (`auth.mask` shows a safe form). Graded cells carry a tag (View > Cell toolbar > Tags):
keep the tags, and keep their outputs as asked.""", None, []),
    ("code", """from pathlib import Path

from IPython.display import Image, Markdown, display

from inference_lab import auth, hf_image

token = auth.get_token()        # from HF_TOKEN or your stored login - never hard-code it
print("token:", auth.mask(token))

MODEL = "black-forest-labs/FLUX.1-schnell"
PROMPT = "a lighthouse on a cliff at dawn, watercolor"
OUT = Path("generated")
OUT.mkdir(exist_ok=True)""", None, []),
    ("md", """## 1. One image

Generate a **384 x 256** image (width 384, height 256) of `PROMPT` with the provider `hf-inference` and
seed 42, saved as `generated/lighthouse.png`, and show it: the cell tagged `answer:image` must display
the saved image as its output.""", None, []),
    ("code", """result = hf_image.generate_image(PROMPT, model=MODEL, out_path=str(OUT / "lighthouse.png"),
                                provider="hf-inference", width=384, height=256, seed=42)
print(f"{result['provider']}: {result['width']}x{result['height']} in {result['latency_s']:.2f} s")
Image(filename=result["path"])""",
     """result = hf_image.generate_image(PROMPT, model=MODEL, out_path=str(OUT / "lighthouse.png"),
                                provider="hf-inference", width=384, height=256, seed=42)
print(f"{result['provider']}: {result['width']}x{result['height']} in {result['latency_s']:.2f} s")
# TODO: show the saved image as this cell's output (IPython.display.Image(filename=...))""", ["answer:image"]),
    ("md", """## 2. Same prompt, three providers

Each provider answers in its own format, yet `generate_image` saves a PNG every time. Compare how long
each one took.""", None, []),
    ("code", """rows = []
for provider in ("hf-inference", "together", "fal-ai"):
    r = hf_image.generate_image(PROMPT, model=MODEL, out_path=str(OUT / f"{provider}.png"),
                                provider=provider, width=256, height=256, seed=7)
    rows.append(f"| {provider} | {r['latency_s']:.2f} | {r['width']}x{r['height']} |")
display(Markdown("| provider | latency (s) | size |\\n|---|---|---|\\n" + "\\n".join(rows)))""",
     """rows = []
for provider in ("hf-inference", "together", "fal-ai"):
    r = hf_image.generate_image(PROMPT, model=MODEL, out_path=str(OUT / f"{provider}.png"),
                                provider=provider, width=256, height=256, seed=7)
    rows.append(r)
# TODO: display the rows as a table (provider, latency in seconds, size)
rows""", ["answer:image_providers"]),
]

CHAT = [
    ("md", """# Chat inference through Hugging Face Inference Providers

Three ways to chat with a hosted model: `InferenceClient` with an explicit provider or `"auto"`, the
OpenAI-compatible router (`openai` client, `base_url` = the router's `/v1`, model `org/name[:provider]`),
and streaming, where the time to the first token (TTFT) is what a user feels. Then a small benchmark:
several providers, several runs each, their latency percentiles and success rate.

The token comes from the environment (never a cell, never printed).""", None, []),
    ("code", """from IPython.display import Markdown, display

from inference_lab import auth, hf_chat, strategies

print("token:", auth.mask(auth.get_token()))
MODEL = "meta-llama/Llama-3.1-8B-Instruct"
MESSAGES = [{"role": "user", "content": "In one sentence: why do inference providers exist?"}]""", None, []),
    ("md", "## 1. One provider, then `auto`", None, []),
    ("code", """for provider in ("cerebras", "auto"):
    r = hf_chat.chat(MESSAGES, model=MODEL, provider=provider, max_tokens=64)
    print(f"{r['provider']:>9}: {r['latency_s']:.3f} s, {r['usage']['completion_tokens']} tokens: {r['text'][:60]}...")""",
     None, ["answer:chat"]),
    ("md", "## 2. The OpenAI-compatible router", None, []),
    ("code", """r = hf_chat.chat_openai(MESSAGES, model=MODEL, max_tokens=64)
print(f"router: {r['latency_s']:.3f} s, usage {r['usage']}")""", None, []),
    ("md", "## 3. Streaming and time to first token", None, []),
    ("code", """s = hf_chat.stream_chat(MESSAGES, model=MODEL, provider="fireworks-ai", max_tokens=64)
print(f"TTFT {s['ttft_s']:.3f} s, total {s['latency_s']:.3f} s, {s['chunks']} chunks with content")""",
     None, []),
    ("md", """## 4. Compare providers

Send the same request 3 times to each of `auto`, `cerebras`, `fireworks-ai` and `novita` and show the
result as a **table** in the cell tagged `answer:provider_table`: one row per provider (its name in the
first column) with its success rate and p50 / p95 latency - a Markdown table
(`display(Markdown(...))`) or a pandas DataFrame.""", None, []),
    ("code", """rows = strategies.compare_providers(MESSAGES, model=MODEL, providers=("auto", "cerebras", "fireworks-ai", "novita"),
                                   runs=3)

def fmt(x):
    return "-" if x is None else f"{x:.3f}"

lines = ["| provider | success rate | p50 (s) | p95 (s) | mean (s) |", "|---|---|---|---|---|"]
lines += [f"| {r['provider']} | {r['success_rate']:.2f} | {fmt(r['latency_p50_s'])} | {fmt(r['latency_p95_s'])} "
          f"| {fmt(r['latency_mean_s'])} |" for r in rows]
display(Markdown("\\n".join(lines)))""",
     """rows = strategies.compare_providers(MESSAGES, model=MODEL, providers=("auto", "cerebras", "fireworks-ai", "novita"),
                                   runs=3)
# TODO: display `rows` as a table: one row per provider with success rate, p50 and p95 latency
rows""", ["answer:provider_table"]),
]

OLLAMA = [
    ("md", """# Ollama: a local model server

Ollama serves models on `http://localhost:11434` (or wherever `OLLAMA_HOST` points). You will use its
command line (`ollama list`, `ollama pull`), its native REST API (`/api/tags`, `/api/generate`,
`/api/chat`), the `inference_lab.ollama_client` functions built on it, and its OpenAI-compatible `/v1`.
Ollama reports durations in **nanoseconds**.""", None, []),
    ("code", """import os

import httpx

from inference_lab import ollama_client

HOST = os.environ.get("OLLAMA_HOST", "http://localhost:11434")
MODEL = "smollm2:135m"
print("Ollama at", HOST)""", None, []),
    ("md", "## 1. The command line and the model list", None, []),
    ("code", """!ollama list""", None, []),
    ("code", """print(ollama_client.list_models())
print("had to pull:", ollama_client.ensure_model(MODEL))""", None, []),
    ("md", "## 2. The REST API by hand", None, []),
    ("code", """reply = httpx.post(f"{HOST}/api/generate", timeout=60,
                   json={"model": MODEL, "prompt": "Say hi.", "stream": False, "options": {"num_predict": 16}}).json()
print(reply["response"])
print("eval_count:", reply["eval_count"], "eval_duration (ns):", reply["eval_duration"])""", None, []),
    ("md", """## 3. Tokens per second

Generate up to 48 tokens and end the cell tagged `answer:tokens_per_s` with the **decode speed in
tokens/s** as the cell's value (its last line): `eval_count / (eval_duration / 1e9)`, as the server
reported them.""", None, []),
    ("code", """result = ollama_client.generate("Why run a language model locally?", model=MODEL,
                                options={"num_predict": 48, "temperature": 0})
print(f"{result['eval_count']} tokens in {result['eval_duration_s']:.3f} s")
result["tokens_per_s"]""",
     """result = ollama_client.generate("Why run a language model locally?", model=MODEL,
                                options={"num_predict": 48, "temperature": 0})
print(f"{result['eval_count']} tokens in {result['eval_duration_s']:.3f} s")
# TODO: end this cell with the tokens/sec figure (its last line is the value shown)""", ["answer:tokens_per_s"]),
    ("md", "## 4. Chat, streamed, and the OpenAI-compatible API", None, []),
    ("code", """messages = [{"role": "user", "content": "Name one reason to run a model locally."}]
chat = ollama_client.chat(messages, model=MODEL, stream=True)
print(f"TTFT {chat['ttft_s']:.3f} s, {chat['tokens_per_s']:.1f} tokens/s: {chat['text'][:80]}")
same = ollama_client.chat_openai(messages, model=MODEL, base_url=HOST + "/v1")
print("via /v1:", same["usage"])""", None, []),
]

NOTEBOOKS = {"image_generation_practice.ipynb": IMAGE, "chat_inference_practice.ipynb": CHAT,
             "ollama_practice.ipynb": OLLAMA}


def build(cells: list, edition: str, prefix: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook(metadata=KERNEL)
    for number, (kind, reference, template, tags) in enumerate(cells, start=1):
        source = reference if edition == "reference" or template is None else template
        meta = {"tags": list(tags)} if tags else {}
        cell_id = f"{prefix}-{number:02d}"
        if kind == "md":
            nb.cells.append(nbformat.v4.new_markdown_cell(source, id=cell_id, metadata=meta))
        else:
            nb.cells.append(nbformat.v4.new_code_cell(source, id=cell_id, metadata=meta))
    nbformat.validate(nb)
    return nb


def main() -> None:
    for edition, folder in (("reference", ROOT / "reference"), ("template", ROOT / "student_template")):
        for name, cells in NOTEBOOKS.items():
            path = folder / name
            nbformat.write(build(cells, edition, name.split("_")[0]), str(path))
            print("wrote", path.relative_to(ROOT))


if __name__ == "__main__":
    main()
