"""Known-bad variants of reference/ for the `hf_chat`, `hf_image` and (at run time) `auth` checkpoints.

Loaded by ``mutants.py`` (``MUTANTS`` here joins its registry). The `auth` ones are graded by
tests/test_checkpoint_auth.py with the other auth mutants; the `hf_chat` and `hf_image` ones by
tests/test_checkpoint_hf.py.
"""

from __future__ import annotations

from mutants import Mutant

CHAT = "inference_lab/hf_chat.py"
IMAGE = "inference_lab/hf_image.py"

# The start of chat()'s request (unique in hf_chat.py: stream_chat has another timeout).
_CHAT_CLIENT = ("    with InferenceClient(provider=provider, api_key=token, timeout=timeout) as client:\n"
                "        start = time.perf_counter()\n"
                "        output = client.chat_completion(\n")
_CHAT_PREAMBLE = ("    token = get_token()\n    msgs = _messages(messages)\n"
                  '    _prepare_provider(provider, "conversational", model)\n' + _CHAT_CLIENT)
_STREAM_LOOP = "        for chunk in stream:\n            now = time.perf_counter()\n"
# An AWS access key id of the real shape (not a real key); split so this file holds none.
_AWS_KEY = "AKIA" + "Q3VBTZ7J2XW4NPLM"

MUTANTS = [
    # -- hf_chat ------------------------------------------------------------------------------------
    Mutant(
        "chat_ignores_provider", "hf_chat",
        "chat() always lets the router choose (InferenceClient's default), whatever provider it is given",
        edits=[(CHAT, _CHAT_CLIENT, _CHAT_CLIENT.replace(
            "InferenceClient(provider=provider,", 'InferenceClient(provider="auto",  # mistake: provider ignored\n'
                                                  "                         "))],
        expect_lost=("test_chat_explicit_provider",),
        expect_message={"test_chat_explicit_provider": ("must call the provider", "fireworks-ai",
                                                        "InferenceClient(provider=provider")},
    ),
    Mutant(
        "chat_auto_picks_a_provider", "hf_chat",
        'chat() turns provider="auto" into a provider of its own choosing instead of letting the router pick',
        edits=[(CHAT, _CHAT_CLIENT, _CHAT_CLIENT.replace(
            "InferenceClient(provider=provider,",
            'InferenceClient(provider=provider if provider != "auto" else "cerebras",  # mistake\n'
            "                         "))],
        expect_lost=("test_chat_auto_provider",),
        expect_message={"test_chat_auto_provider": ("must let the Hugging Face router choose", "cerebras",
                                                    "provider='auto'")},
    ),
    Mutant(
        "chat_constant_latency", "hf_chat",
        "chat() reports a typical latency instead of measuring it",
        edits=[(CHAT, "        latency = time.perf_counter() - start\n    text = _first_choice_text(output)\n",
                "        latency = 0.25  # mistake: a typical value, not a measurement\n"
                "    text = _first_choice_text(output)\n")],
        expect_lost=("test_chat_explicit_provider",),
        expect_message={"test_chat_explicit_provider": ("latency_s", "0.250 s", "the simulator's log")},
    ),
    Mutant(
        "stream_ttft_to_role_chunk", "hf_chat",
        "stream_chat() stops the TTFT clock at the first chunk of any kind (the role-only one)",
        edits=[(CHAT, _STREAM_LOOP, _STREAM_LOOP + "            if ttft is None:  # mistake: any chunk, even role-only\n"
                                                   "                ttft = now - start\n")],
        expect_lost=("test_stream_chat_ttft",),
        expect_message={"test_stream_chat_ttft": ("ttft_s", "first chunk with content", "role")},
    ),
    Mutant(
        "stream_counts_every_chunk", "hf_chat",
        "stream_chat() counts every chunk, the role-only and usage-only ones too",
        edits=[(CHAT, _STREAM_LOOP, _STREAM_LOOP + "            chunks += 1  # mistake: every chunk counts\n"),
               (CHAT, "                chunks += 1\n", "")],
        expect_lost=("test_stream_chat_text_and_chunks",),
        expect_message={"test_stream_chat_text_and_chunks": ("chunks=", "chunks with content",
                                                             "delta.content")},
    ),
    # -- hf_image -----------------------------------------------------------------------------------
    Mutant(
        "image_jpeg_as_png", "hf_image",
        "generate_image() saves JPEG data under the .png name",
        edits=[(IMAGE, '    image.save(path, format="PNG")\n',
                '    image.convert("RGB").save(path, format="JPEG")  # mistake: the name says .png, the data is JPEG\n')],
        expect_lost=("test_image_saved_as_png", "test_image_size_and_pixels"),
        expect_message={"test_image_saved_as_png": ("JPEG file named .png", "format='PNG'"),
                        "test_image_size_and_pixels": ("different pixels",)},
    ),
    Mutant(
        "image_ignores_size", "hf_image",
        "generate_image() does not ask the provider for the size (it resizes the default-size image)",
        edits=[(IMAGE, "            prompt, model=model, width=width, height=height, seed=seed\n",
                "            prompt, model=model, seed=seed  # mistake: width/height not passed on\n")],
        expect_lost=("test_image_size_and_pixels",),
        expect_message={"test_image_size_and_pixels": ("asked the provider for a", "pass width=width")},
    ),
    # -- auth, at run time --------------------------------------------------------------------------
    Mutant(
        "auth_prints_token", "auth",
        "chat() prints the token while debugging",
        edits=[(CHAT, _CHAT_PREAMBLE, _CHAT_PREAMBLE.replace(
            "    token = get_token()\n", '    token = get_token()\n    print("using token", get_token())  # debugging\n'))],
        expect_lost=("test_no_token_in_output",),
        expect_message={"test_no_token_in_output": ("printed the token", "during chat(", "using token hf_…",
                                                    "mask(token)")},
    ),
    Mutant(
        "auth_token_in_url", "auth",
        "chat_openai() sends the token in the query string too",
        edits=[(CHAT, "        base_url=_router_base(), api_key=token, timeout=timeout, max_retries=0\n",
                "        base_url=_router_base(), api_key=token, timeout=timeout, max_retries=0,\n"
                '        default_query={"api_key": token},  # mistake: the token in every URL\n')],
        expect_lost=("test_token_only_in_authorization_header",),
        expect_message={"test_token_only_in_authorization_header": ("/v1/chat/completions", "query string",
                                                                    "Authorization: Bearer")},
    ),
    Mutant(
        "auth_token_in_log_file", "auth",
        "generate_image() logs the request, token included, to a file",
        edits=[(IMAGE, '    image.save(path, format="PNG")\n',
                '    image.save(path, format="PNG")\n'
                '    with open("requests.log", "a") as log:  # mistake: the token in a log file\n'
                '        log.write(f"text_to_image model={model} token={token}\\n")\n')],
        expect_lost=("test_no_token_in_written_files",),
        expect_message={"test_no_token_in_written_files": ("submission/requests.log, line 1", "token=hf_…",
                                                           "mask(token)")},
    ),
    Mutant(
        "auth_aws_key_in_notes", "auth",
        "a settings file with another service's key (an AWS access key id) is handed in",
        add_files={"notes/settings.py": f'# copied from my other project\nAWS_ACCESS_KEY_ID = "{_AWS_KEY}"\n'},
        expect_lost=("test_no_other_secrets_in_files",),
        expect_message={"test_no_other_secrets_in_files": ("notes/settings.py, line 2", "AWS Access Key",
                                                           "…NPLM", "revoke")},
    ),
]
