"""Secrets that must never leave this machine: scrub them from text we upload or log.

`redact(text, secrets=())` hides the value of every password-ish `key=value` (kernel command
line keys such as `p2v.password=…`/`p2v.auth.password="…"`, anything whose key mentions
password/passwd/passphrase/pwd/secret/token), the password of URL credentials
(`scheme://user:pass@host` → `scheme://user:<hidden>@host`), and every literal occurrence of
the known `secrets` (the configured password) of 3 characters or more.  It is applied to the
system data p2v uploads (dmesg holds the kernel command line) and to messages quoting URLs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

HIDDEN = "<hidden>"
_SECRET_KEY = re.compile(
    r"""(?P<key>[^\s="'<>]*(?:passw|passphrase|pwd|secret|token)[^\s="'<>]*)="""
    r"""(?P<value>"[^"\n]*"?|'[^'\n]*'?|[^\s"']*)""",
    re.IGNORECASE)
_URL_CREDENTIALS = re.compile(
    r"(?P<scheme>\b[a-z][a-z0-9+.\-]*://)(?P<user>[^/\s@:]*):(?P<password>[^/\s@]*)@",
    re.IGNORECASE)
MIN_LITERAL = 3


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """`text` with password values, URL passwords and the given secrets replaced."""
    for secret in secrets:
        if secret and len(secret) >= MIN_LITERAL:
            text = text.replace(secret, HIDDEN)
    text = _SECRET_KEY.sub(lambda m: f"{m.group('key')}={HIDDEN}", text)
    return _URL_CREDENTIALS.sub(lambda m: f"{m.group('scheme')}{m.group('user')}:{HIDDEN}@",
                                text)
