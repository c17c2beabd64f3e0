"""Files a person or a crash can damage are parsed, not trusted: a lease that cannot be real is treated as
expired and said so; a damaged run state or champion record is refused naming the file and the way out
(tests/test_bad_input.py's table); text read from a file reaches the terminal escaped, never raw."""

from __future__ import annotations

import json
import logging
import time

import pytest

from trainboard import storage
from trainboard.artifacts.lease import LEASE_SECONDS, take
from trainboard.checks import printable
from trainboard.errors import UsageError
from trainboard.layout import lease_file

YEAR = 365 * 86400.0


def lease_text(**fields) -> str:
    lease = {"run": "k1", "holder": "night-run", "expires": time.time() + 600, "by": "me@host", **fields}
    return json.dumps(lease)


@pytest.mark.parametrize(
    ("text", "said"),
    [
        (lease_text(expires="tomorrow"), "expires 'tomorrow' is not a time"),
        (lease_text(expires="RAW").replace('"RAW"', "Infinity"), "expires inf is not a time"),
        (lease_text(expires="RAW").replace('"RAW"', "NaN"), "expires nan is not a time"),
        (lease_text(expires=time.time() + 3 * YEAR), "but a lease lasts 30 minutes"),
        (lease_text(expires=True), "expires True is not a time"),
        (lease_text(holder="night\x1b[2Jrun"), "holder 'night\\x1b[2Jrun' is not a holder's name"),
        (lease_text(holder=["night-run"]), "holder ['night-run'] is not a holder's name"),
        (lease_text(run="k2"), "run 'k2', not k1"),
        ('["k1", "night-run"]', "not a lease's fields"),
        (lease_text()[:30], "not JSON"),
    ],
    ids=[
        "tomorrow",
        "infinity",
        "nan",
        "years-ahead",
        "a-boolean",
        "escape-in-holder",
        "holder-a-list",
        "another-run",
        "a-list",
        "truncated",
    ],
)
def test_a_lease_that_cannot_be_real_is_treated_as_expired_and_said_so(root, caplog, text, said):
    storage.write_bytes(lease_file(root, "k1"), text.encode())
    with caplog.at_level(logging.WARNING, logger="trainboard.artifacts.lease"):
        lease = take(root, "k1", "next-night")
    assert lease.holder == "next-night"
    assert json.loads(storage.read_bytes(lease_file(root, "k1")))["holder"] == "next-night", "taken over"
    [warning] = [r.getMessage() for r in caplog.records]
    assert (
        f"{lease_file(root, 'k1')} is not a lease a run wrote" in warning and "treated as expired" in warning
    )
    assert said in warning and "\x1b" not in warning and "\n" not in warning


def test_a_lease_a_run_wrote_still_holds_the_name(tmp_path):
    """Up to LEASE_SECONDS ahead (and a few minutes for another machine's clock) is a real lease."""
    root = str(tmp_path / "root")
    for ahead in (1.0, LEASE_SECONDS, LEASE_SECONDS + 200):
        storage.write_bytes(lease_file(root, "k1"), lease_text(expires=time.time() + ahead).encode())
        with pytest.raises(UsageError, match="run k1 is in use by night-run"):
            take(root, "k1", "next-night")


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("run\x1b[31mred", "run\\x1b[31mred"),
        ("one\nforged line", "one\\nforged line"),
        ("back\rover", "back\\rover"),
        ("night\u202eylth", "night\\u202eylth"),
        ("zero\u200bwidth", "zero\\u200bwidth"),
        ("caf\u00e9 \u65e5\u672c", "caf\u00e9 \u65e5\u672c"),  # visible text stays as it is
        ("caf\udce9", "caf\\udce9"),  # a file name's undecodable byte (surrogateescape)
    ],
)
def test_text_read_from_a_file_is_printed_escaped(text, shown):
    assert printable(text) == shown


def test_a_failed_steps_log_lines_are_shown_escaped(tmp_path, capsys):
    """A step's last lines, read back from its log, may hold a tool's colours or a carriage return."""
    from trainboard.app.cli.output import failed_with_log

    tail = ["epoch 1\n", "\x1b[31mERROR\x1b[0m out of memory\n", "50%\r100%\n"]
    assert failed_with_log("local", "step train failed", tail, tmp_path / "run.log") == 1
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\r" not in err
    assert err.splitlines()[1:3] == ["    \\x1b[31mERROR\\x1b[0m out of memory", "    50%\\r100%"]
