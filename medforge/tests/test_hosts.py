"""Session host names (pure functions)."""
from __future__ import annotations

import pytest

from medforge.core.hosts import SessionHost, parse_session_host, session_host


@pytest.mark.parametrize("host, expected", [
    ("s-abcdefgh.external.medforge.localhost", SessionHost("abcdefgh", "external")),
    ("s-abcd2345.internal.medforge.localhost:8000", SessionHost("abcd2345", "internal")),
    ("S-ABCDEFGH.EXTERNAL.MEDFORGE.LOCALHOST", SessionHost("abcdefgh", "external")),
    ("s-abcdefgh.external.medforge.localhost.", SessionHost("abcdefgh", "external")),
    ("s-abcdefg1.external.medforge.localhost", None),      # 1 is not base32
    ("s-abcdefghi.external.medforge.localhost", None),     # 9 chars
    ("s-abcdefgh.public.medforge.localhost", None),
    ("s-abcdefgh.external.medforge.localhost.evil.org", None),
    ("s-abcdefgh.external.xmedforge.localhost", None),
    ("evil.org/s-abcdefgh.external.medforge.localhost", None),
    ("s-abcdefgh.external.medforge.localhost:99999999", None),
    ("medforge.localhost", None),
    ("", None),
    (None, None),
])
def test_parse_session_host(host, expected):
    assert parse_session_host(host) == expected


def test_session_host_round_trips():
    assert parse_session_host(session_host("abcdefgh", "internal")) == SessionHost(
        "abcdefgh", "internal")
    with pytest.raises(ValueError):
        session_host("abcdefgh", "public")
