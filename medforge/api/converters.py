"""URL converters shared by the apps: `<exposure:exposure>` matches external|internal."""
from __future__ import annotations


class ExposureConverter:
    regex = "(?:external|internal)"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value
