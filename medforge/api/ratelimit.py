"""Fixed-window rate limits kept in the shared cache, so every process sees the same counts."""
from __future__ import annotations

import hashlib
import re
import time

from django.core.cache import cache

from .problems import Problem

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(rate: str) -> tuple[int, int]:
    """'10/m' → (10, 60); '5/15m' → (5, 900)."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d*)\s*([smhd])\s*", rate)
    if not m:
        raise ValueError(f"bad rate {rate!r}")
    count, mult, unit = int(m.group(1)), int(m.group(2) or 1), m.group(3)
    return count, mult * _UNITS[unit]


def _key(scope: str, ident: str, window_start: int) -> str:
    digest = hashlib.sha256(ident.encode()).hexdigest()[:32]
    return f"rl:{scope}:{digest}:{window_start}"


def hit(scope: str, ident: str, rate: str, *, cost: int = 1) -> tuple[bool, int]:
    """Count one event; returns (allowed, seconds until the window resets)."""
    limit, window = parse_rate(rate)
    now = time.time()
    start = int(now // window * window)
    key = _key(scope, ident, start)
    cache.add(key, 0, timeout=window + 5)
    try:
        count = cache.incr(key, cost)
    except ValueError:  # evicted between add and incr
        cache.set(key, cost, timeout=window + 5)
        count = cost
    retry_after = max(1, int(start + window - now + 0.999))
    return count <= limit, retry_after


def peek(scope: str, ident: str, rate: str) -> tuple[bool, int]:
    """Whether the next event would still be allowed, without counting it."""
    limit, window = parse_rate(rate)
    now = time.time()
    start = int(now // window * window)
    count = cache.get(_key(scope, ident, start), 0)
    return count < limit, max(1, int(start + window - now + 0.999))


def enforce(scope: str, ident: str, rate: str) -> None:
    allowed, retry_after = hit(scope, ident, rate)
    if not allowed:
        raise Problem(
            "rate_limited",
            f"Too many requests; try again in {retry_after} s.",
            headers={"Retry-After": str(retry_after)},
            retry_after=retry_after,
        )
