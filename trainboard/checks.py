"""The small checks that parameters' checks are made of: a choice, a count, a run name, visible text, a
URL (the ranges of numbers are declared with them: config.py's Bounds). Each raises UsageError naming the
field; they import nothing of trainboard but the errors and the layout, so the parameter checks, roots.py
and the CLI can all use them."""

from __future__ import annotations

import re
import unicodedata
import urllib.parse

from trainboard import layout
from trainboard.errors import UsageError

_RUN_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def is_run_name(name: str) -> bool:
    """Whether ``name`` is one a run can have (gc walks only these under checkpoints/)."""
    return bool(_RUN_RE.fullmatch(name)) and name != layout.CHAMPION  # fullmatch: `$` lets a newline in


def check_run_name(run: str, field: str = "run_name") -> None:
    """``field``: the option that gave the name (rollback's --to names a run too)."""
    if not _RUN_RE.fullmatch(run):
        raise UsageError(
            field,
            f"{run!r} is not a valid run name; use 1-100 of letters, digits, '.', '_', '-' "
            "(no slashes), starting with a letter or digit",
        )
    if run == layout.CHAMPION:
        raise UsageError(field, f"{run!r} is reserved: <root>/models/{run}/ holds the champion's model")


def check_choice(field: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise UsageError(field, f"{value!r} is not one of: {', '.join(allowed)}")


def check_count(field: str, value: str) -> None:
    """A whole number 0 or more, written as a string (a pod-spec value the KFP driver reads as a string)."""
    if not re.fullmatch(r"[0-9]+", value):
        raise UsageError(
            field, f'must be a whole number 0 or more, written as a string (e.g. "1"), got {value!r}'
        )


# A Kubernetes extended resource name (a qualified name: an optional DNS-subdomain prefix and a name,
# k8s.io/apimachinery validation IsQualifiedName), which also covers Vertex AI's accelerator types
# (NVIDIA_L4, TPU_V3): what `set_accelerator_type` compiles into the train task's resources.
_ACCELERATOR_RE = re.compile(
    r"(?:[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
)


def check_accelerator_type(value: str, count: str) -> None:
    """A resource name the train task can request, unless it requests none (count "0"): an empty or
    spaced one would reach the cluster, where the pod asks for a resource no node has, or for none."""
    if count != "0" and not _ACCELERATOR_RE.fullmatch(value):
        shown = "empty" if not value.strip() else "not a resource name"
        raise UsageError(
            "accelerator_type",
            f"{value!r} is {shown}; the train task requests accelerator_count={count} of it: use "
            "nvidia.com/gpu (Kubeflow Pipelines), a machine accelerator such as NVIDIA_L4 (Vertex AI), "
            "or accelerator_count=0 for no accelerator",
        )


def _is_hidden(c: str) -> bool:
    return unicodedata.category(c)[0] == "C" or unicodedata.category(c) in ("Zl", "Zp")


def hidden_characters(text: str) -> list[str]:
    """The code points (U+XXXX) in ``text`` that print as nothing or move what follows: controls (a
    newline, an escape sequence), formatting marks (right-to-left overrides, zero-width spaces),
    unassigned ones, line and paragraph separators (categories C*, Zl, Zp). In a name, a path or a
    reason they make logs and the UI lie: 'night\u202eylth' reads as another name."""
    return [f"U+{ord(c):04X}" for c in text if _is_hidden(c)]


def printable(text: str) -> str:
    """``text`` as it may go to a terminal: each of its hidden_characters written as its Python escape
    (a newline as \\n, an escape sequence's ESC as \\x1b, a right-to-left override as \\u202e), the rest
    as it is. Every text read from a file (a lease, a record, a state) goes through it before it is
    printed: raw, it could recolour the terminal, forge lines or reverse what follows."""
    return "".join(c.encode("unicode_escape").decode("ascii") if _is_hidden(c) else c for c in text)


def check_visible(field: str, value: str) -> None:
    """UsageError naming ``field`` when ``value`` holds hidden_characters."""
    hidden = hidden_characters(value)
    if hidden:
        raise UsageError(
            field,
            f"{value!r} holds {', '.join(hidden)}: control or invisible formatting characters (such as "
            "right-to-left marks) are not allowed; use visible characters",
        )


def check_http_url(field: str, url: str) -> str:
    """``url`` without a trailing slash, or UsageError unless it is http(s)://HOST[...] (shown without
    any user:password@ it holds)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        shown = urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[-1]))
        raise UsageError(field, f"{shown!r} is not an http:// or https:// URL with a host")
    return url.rstrip("/")
