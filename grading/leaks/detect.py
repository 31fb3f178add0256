"""Other secrets (cloud keys, API tokens of other services, private keys, passwords in URLs), found by
Yelp's maintained scanner `detect-secrets <https://github.com/Yelp/detect-secrets>`_.

It runs on the same text as the Hugging Face rule (files, notebook cells, git objects) with its
format-specific plugins and its default false-positive filters — not its entropy or keyword
heuristics, which flag image data in notebook outputs and hashes in results files. Its findings carry
``rule`` = the detect-secrets type (e.g. "AWS Access Key"); the secret itself is masked in the
excerpt just the same.
"""

from __future__ import annotations

import re
import threading

from grading.leaks.matcher import _masked_excerpt, _Matcher, _merged, _occurrences
from grading.leaks.model import Leak

# A value detect-secrets reports that is a placeholder, not a secret.
PLACEHOLDER_RE = re.compile(r"…|\*{3}|x{4}|X{4}|[<>{}$]|your|example|placeholder|changeme|redacted",
                            re.IGNORECASE)

# detect-secrets plugins for secrets with a recognisable format. Left out on purpose: the entropy
# detectors (Base64HighEntropyString, HexHighEntropyString: every PNG in a notebook output and every
# sha256 in a results file would be a "secret"), KeywordDetector (any `password = ...` line, including
# placeholders in teaching text) and IPPublicDetector (not a secret).
DETECT_SECRETS_PLUGINS = (
    "ArtifactoryDetector", "AWSKeyDetector", "AzureStorageKeyDetector", "BasicAuthDetector",
    "CloudantDetector", "DiscordBotTokenDetector", "GitHubTokenDetector", "GitLabTokenDetector",
    "IbmCloudIamDetector", "IbmCosHmacDetector", "JwtTokenDetector", "MailchimpDetector", "NpmDetector",
    "OpenAIDetector", "PrivateKeyDetector", "PypiTokenDetector", "SendGridDetector", "SlackDetector",
    "SoftlayerDetector", "SquareOAuthDetector", "StripeDetector", "TelegramBotTokenDetector",
    "TwilioKeyDetector",
)


class _DetectSecrets:
    """detect-secrets with :data:`DETECT_SECRETS_PLUGINS`, one line at a time.

    Its settings are process-global, so every use holds a lock and its own transient settings. A
    whole text is first checked against the plugins' own patterns (one C regex pass each), so the
    per-line scan only runs on the few texts that may hold such a secret.
    """

    _lock = threading.Lock()
    _patterns: list | None = None

    @staticmethod
    def _settings() -> dict:
        return {"plugins_used": [{"name": name} for name in DETECT_SECRETS_PLUGINS]}

    @classmethod
    def _prefilter(cls) -> list:
        if cls._patterns is None:
            from detect_secrets.core.scan import get_plugins
            from detect_secrets.settings import transient_settings

            patterns = []
            with cls._lock, transient_settings(cls._settings()):
                for plugin in get_plugins():
                    patterns.extend(getattr(plugin, "denylist", ()) or ())
            cls._patterns = patterns
        return cls._patterns

    @classmethod
    def findings(cls, text: str) -> list[tuple[int, str, str]]:
        """(1-based line, secret type, secret value) for every secret detect-secrets finds in text."""
        patterns = cls._prefilter()
        if patterns and not any(p.search(text) for p in patterns):
            return []
        from detect_secrets.core.scan import scan_line
        from detect_secrets.settings import transient_settings

        found = []
        with cls._lock, transient_settings(cls._settings()):
            for number, line in enumerate(text.splitlines(), start=1):
                if patterns and not any(p.search(line) for p in patterns):
                    continue
                for secret in scan_line(line):
                    if secret.secret_value:
                        found.append((number, str(secret.type), str(secret.secret_value)))
        return found


def _other_secrets(text: str, *, where: str, kind: str, matcher: "_Matcher", cell: int | None,
                   line_offset: int) -> list[Leak]:
    found = _DetectSecrets.findings(text)
    if not found:
        return []
    lines = text.splitlines()
    by_line: dict[tuple[int, str], list[str]] = {}
    for number, secret_type, value in found:
        line = lines[number - 1] if 0 < number <= len(lines) else ""
        secret = _whole_secret(line, value)
        if PLACEHOLDER_RE.search(secret):
            continue  # "https://user:hf_…@host", "<password>", "your-key-here": teaching text
        hf_spans = matcher.spans(line)
        if matcher.spans(secret) or any(secret in line[a:b] for a, b in hf_spans):
            continue  # a Hugging Face token (e.g. the password of a URL): reported by the HF rule
        by_line.setdefault((number, secret_type), []).append(secret)
    leaks = []
    for (number, secret_type), secrets in sorted(by_line.items()):
        line = lines[number - 1] if 0 < number <= len(lines) else ""
        spans = []
        for secret in secrets:
            spans.extend(_occurrences(line, secret))
        spans = _merged(spans)
        excerpt = _masked_excerpt(line, spans) if spans else "(the secret is not shown)"
        leaks.append(Leak(where=where, line=number + line_offset, kind=kind, excerpt=excerpt, cell=cell,
                          rule=secret_type))
    return leaks


def _whole_secret(line: str, value: str) -> str:
    """The secret to mask: detect-secrets' value, or — when that is only a short part of the secret
    (GitHubTokenDetector reports just "ghp") — the whole match of the plugin pattern holding it."""
    if len(value) >= 8:
        return value
    best = value
    for pattern in _DetectSecrets._prefilter():
        for match in pattern.finditer(line):
            whole = match.group(0)
            if value in whole and len(whole) > len(best):
                best = whole
    return best
