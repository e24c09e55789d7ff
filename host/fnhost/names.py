"""One definition of every name rule: functions, aliases, resources, env keys, digests, request ids.

Each rule is matched whole. The compiled patterns end in `\\Z`, not `$`: `$` also matches before a
trailing newline, so `re.match(r"^[a-z]+$", "billing\\n")` accepts a name that is not one. With
`\\Z`, `.match` and `.fullmatch` agree, so no caller can get it wrong.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class NameRule:
    """A name rule: what it names, the pattern (matched whole) and the rule in words, for messages."""

    what: str
    pattern: re.Pattern[str]
    rule: str

    def matches(self, value: object) -> bool:
        return isinstance(value, str) and self.pattern.fullmatch(value) is not None


def _whole(pattern: str) -> re.Pattern[str]:
    return re.compile(rf"(?:{pattern})\Z")


FUNCTION = NameRule(
    "function name", _whole(r"[a-z][a-z0-9-]{0,62}"), "1..63 lower-case letters, digits or '-', starting with a letter"
)
ALIAS = NameRule("alias", FUNCTION.pattern, FUNCTION.rule)
"""Aliases follow the function-name rule; starting with a letter, they never look like a version."""
RESOURCE = NameRule(
    "name",
    _whole(r"[a-zA-Z0-9][a-zA-Z0-9._-]{0,127}"),
    "1..128 letters, digits, '.', '_' or '-', starting with a letter or digit",
)
"""kv buckets, queues, secrets and schedules."""
ENV_KEY = NameRule("env name", _whole(r"[A-Za-z_][A-Za-z0-9_]{0,127}"), "[A-Za-z_][A-Za-z0-9_]*, at most 128")
SHA256 = NameRule("sha256", _whole(r"[0-9a-f]{64}"), "64 lower-case hex digits")
REQUEST_ID = NameRule("request id", _whole(r"[A-Za-z0-9._:-]{1,128}"), "1..128 of A-Z a-z 0-9 . _ : -")
HTTP_TOKEN = NameRule("HTTP header name", _whole(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"), "an RFC 9110 token")

NAME_RE = FUNCTION.pattern
RESOURCE_RE = RESOURCE.pattern
ENV_KEY_RE = ENV_KEY.pattern
