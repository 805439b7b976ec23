"""Credentials kept out of the tracking store: user info and token query parameters in URIs,
and values of secret-named config keys, replaced by ``***`` before anything is logged."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

MASK = "***"

#: ``scheme://user:password@host`` (or ``scheme://token@host``): the user info part.
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)(?P<userinfo>[^/\s@?#]+)@")
#: Query parameters that carry credentials (``?token=...``, ``&X-Amz-Signature=...``).
_SECRET_WORDS = (
    r"token|access_token|refresh_token|id_token|auth|authorization|api_key|apikey|key|"
    r"password|passwd|pwd|secret|client_secret|sig|signature|x-amz-signature|"
    r"x-amz-credential|x-amz-security-token|sas|code"
)
_QUERY_SECRET = re.compile(rf"(?P<lead>[?&;](?:{_SECRET_WORDS})=)(?P<value>[^&;#\s'\"]*)",
                           re.IGNORECASE)
#: Config keys whose value is a credential whatever it looks like.
_SECRET_KEY = re.compile(
    r"(^|[._\-])(password|passwd|secret|token|api_key|apikey|access_key|credentials?)$",
    re.IGNORECASE,
)


def redact_text(text: str) -> str:
    """``text`` with URI user info and credential query values replaced by ``***``."""
    if "@" not in text and "=" not in text:
        return text
    text = _USERINFO.sub(lambda m: f"{m['scheme']}{MASK}@", text)
    return _QUERY_SECRET.sub(lambda m: f"{m['lead']}{MASK}" if m["value"] else m[0], text)


def is_secret_key(key: str) -> bool:
    """Whether a config key (``a.b.api_key``) names a credential."""
    return bool(_SECRET_KEY.search(str(key)))


def redact(value: Any, key: str = "") -> Any:
    """A copy of a config value (dicts, lists, strings) with credentials masked."""
    if key and is_secret_key(key) and value not in (None, ""):
        return MASK
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(redact(v) for v in value)
    return value
