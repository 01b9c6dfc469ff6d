"""Credentials never reach a file or the terminal: ``redact`` masks them in any text purgemix stores or prints.

Where a secret can come from: a model spec's URL (``https://user:KEY@host/v1``, ``?api_key=KEY``), the
environment (``OPENAI_API_KEY`` and the like, sent as ``Authorization: Bearer KEY``), and a server's error
body that echoes that header back. The manifest, the run's events (a failed request's error text), the reports
and the CLI's error lines all pass through here, so a key written in any of these places is masked.
"""

from __future__ import annotations

import os
import re
from typing import Any

MASK = "***"
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/@\s:'\"]*(?::[^/@\s'\"]*)?@")
_QUERY = re.compile(r"(?i)([?&;](?:api[_-]?key|key|token|access[_-]?token|auth|secret|password|pwd|sig)=)[^&#\s'\"]+")
_BEARER = re.compile(r"(?i)\b(bearer|basic)(\s+)[A-Za-z0-9._~+/=-]{6,}")
# provider key shapes (OpenAI sk-, Hugging Face hf_, Groq gsk_, xAI xai-): 16+ characters with a digit
_KEY_SHAPES = re.compile(r"\b(?:sk|hf|gsk|xai)[-_](?=[A-Za-z_-]*\d)[A-Za-z0-9_-]{16,}\b")
_SECRET_ENV = re.compile(r"(?i)(key|token|secret|password|passwd|credential)")


def _env_secrets() -> list[str]:
    """Values of the environment variables whose names say they hold a secret (8 characters or more)."""
    return sorted({v for k, v in os.environ.items() if _SECRET_ENV.search(k) and len(v) >= 8}, key=len, reverse=True)


def redact(text: str) -> str:
    if not text:
        return text
    for value in _env_secrets():
        if value in text:
            text = text.replace(value, MASK)
    text = _USERINFO.sub(lambda m: f"{m.group(1)}{MASK}@", text)
    text = _QUERY.sub(lambda m: m.group(1) + MASK, text)
    text = _BEARER.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
    return _KEY_SHAPES.sub(MASK, text)


def redact_obj(obj: Any) -> Any:
    """``obj`` with every string in it redacted (dicts, lists and tuples walked; keys kept)."""
    if isinstance(obj, str):
        return redact(obj)
    if isinstance(obj, dict):
        return {k: redact_obj(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(redact_obj(v) for v in obj)
    return obj
