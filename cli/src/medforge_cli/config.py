"""Where the CLI finds its URL and token.

The config file is `<user config dir>/medforge/config.toml` (platformdirs; on Linux
`~/.config/medforge/config.toml`, or `$MEDFORGE_CONFIG_DIR/config.toml`), written with mode
0600 in a 0700 directory because it holds personal API tokens:

    default_profile = "default"

    [profiles.default]
    url = "https://medforge.example.org"
    token = "mf_…"

Precedence, highest first:
- profile: `--profile`, `$MEDFORGE_PROFILE`, `default_profile` in the file, `default`;
- URL: `--url` (login), `$MEDFORGE_URL`, the profile's `url`;
- token: `$MEDFORGE_TOKEN`, the profile's `token`;
- port-forward path: `--path-template`, `$MEDFORGE_PORT_FORWARD_PATH`, the profile's
  `port_forward_path`, code-server's `/proxy/{port}/`.
"""
from __future__ import annotations

import os
import re
import stat
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import platformdirs

from .errors import AuthError, UsageError

APP_NAME = "medforge"
CONFIG_FILE = "config.toml"
DEFAULT_PROFILE = "default"
DEFAULT_PORT_FORWARD_PATH = "/proxy/{port}/"
PROFILE_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
PROFILE_KEYS = ("url", "token", "port_forward_path")


def config_dir() -> Path:
    override = os.environ.get("MEDFORGE_CONFIG_DIR")
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))


def config_path() -> Path:
    return config_dir() / CONFIG_FILE


def normalize_url(raw: str) -> str:
    """`medforge.example.org`, `https://medforge.example.org/`, `…/api/v2` → the site's root
    URL without a trailing slash. Local names (`localhost`, `*.localhost`, loopback
    addresses) default to http, everything else to https."""
    value = (raw or "").strip()
    if not value:
        raise UsageError("The MedForge URL is empty.")
    if "://" not in value:
        host = value.split("/", 1)[0].split(":", 1)[0].lower()
        local = host == "localhost" or host.endswith(".localhost") or host.startswith("127.")
        value = ("http://" if local else "https://") + value
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"Not an http(s) URL: {raw!r}.")
    path = parts.path.rstrip("/")
    for suffix in ("/api/v2", "/api"):
        if path.endswith(suffix):
            path = path[: -len(suffix)]
            break
    netloc = parts.netloc.rsplit("@", 1)[-1]  # never keep credentials typed into a URL
    return f"{parts.scheme}://{netloc}{path}"


# --- the file ---------------------------------------------------------------------------------


def _toml_string(value: str) -> str:
    out = ['"']
    for ch in value:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def dumps(data: dict) -> str:
    """The config as TOML: top-level strings, then one table per profile (strings only)."""
    lines = ["# MedForge CLI configuration (written by `medforge login`). Keep it private: mode 0600."]
    for key, value in data.items():
        if isinstance(value, str):
            lines.append(f"{key} = {_toml_string(value)}")
    for name, profile in sorted((data.get("profiles") or {}).items()):
        lines.append("")
        lines.append(f"[profiles.{_toml_string(name)}]")
        for key in PROFILE_KEYS:
            if isinstance(profile.get(key), str):
                lines.append(f"{key} = {_toml_string(profile[key])}")
    return "\n".join(lines) + "\n"


class ConfigFile:
    """The TOML config file: read leniently, written atomically with mode 0600."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or config_path()

    def load(self) -> dict:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise UsageError(f"Cannot read {self.path}: {exc.strerror or exc}.") from None
        self._warn_if_open()
        try:
            data = tomllib.loads(raw.decode("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise UsageError(f"{self.path} is not valid TOML: {exc}.") from None
        if not isinstance(data.get("profiles", {}), dict):
            raise UsageError(f"{self.path}: `profiles` must be a table.")
        return data

    def _warn_if_open(self) -> None:
        if os.name != "posix":
            return
        try:
            mode = stat.S_IMODE(self.path.stat().st_mode)
        except OSError:
            return
        if mode & 0o077:
            print(f"medforge: warning: {self.path} is readable by other users (mode {mode:04o}); "
                  f"it holds API tokens: chmod 600 {self.path}", file=sys.stderr)

    def save(self, data: dict) -> None:
        folder = self.path.parent
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        text = dumps(data).encode("utf-8")
        tmp = folder / f".{self.path.name}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o600)
        try:
            if os.name == "posix":
                os.fchmod(fd, 0o600)  # whatever the umask
            with os.fdopen(fd, "wb") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        if os.name == "posix":
            os.chmod(self.path, 0o600)

    # --- profile edits ----------------------------------------------------------------------

    def set_profile(self, name: str, **values: str | None) -> None:
        check_profile_name(name)
        data = self.load()
        profiles = data.setdefault("profiles", {})
        profile = dict(profiles.get(name) or {})
        for key, value in values.items():
            if value is None:
                profile.pop(key, None)
            else:
                profile[key] = value
        profiles[name] = profile
        data.setdefault("default_profile", name)
        self.save(data)

    def remove_token(self, name: str) -> bool:
        data = self.load()
        profile = (data.get("profiles") or {}).get(name)
        if not profile or "token" not in profile:
            return False
        del profile["token"]
        self.save(data)
        return True


def check_profile_name(name: str) -> str:
    if not PROFILE_RE.match(name or ""):
        raise UsageError(f"Invalid profile name {name!r} (letters, digits, '.', '_', '-').")
    return name


# --- resolution -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    profile: str
    url: str | None
    token: str | None
    url_source: str  # "--url", "MEDFORGE_URL", "config" or "unset"
    token_source: str  # "MEDFORGE_TOKEN", "config" or "unset"
    port_forward_path: str
    config_path: Path

    def require_url(self) -> str:
        if not self.url:
            raise UsageError("No MedForge URL: run `medforge login --url URL` or set MEDFORGE_URL.")
        return self.url

    def require_token(self) -> str:
        if not self.token:
            raise AuthError("Not logged in: run `medforge login` (or set MEDFORGE_TOKEN).")
        return self.token


def resolve(*, profile: str | None = None, url: str | None = None, env: dict | None = None,
            file: ConfigFile | None = None) -> Settings:
    env = os.environ if env is None else env
    file = file or ConfigFile()
    data = file.load()
    name = profile or env.get("MEDFORGE_PROFILE") or data.get("default_profile") or DEFAULT_PROFILE
    check_profile_name(name)
    stored = (data.get("profiles") or {}).get(name) or {}
    if not isinstance(stored, dict):
        raise UsageError(f"{file.path}: profile {name!r} must be a table.")

    if url:
        chosen_url, url_source = normalize_url(url), "--url"
    elif env.get("MEDFORGE_URL"):
        chosen_url, url_source = normalize_url(env["MEDFORGE_URL"]), "MEDFORGE_URL"
    elif stored.get("url"):
        chosen_url, url_source = normalize_url(str(stored["url"])), "config"
    else:
        chosen_url, url_source = None, "unset"

    if env.get("MEDFORGE_TOKEN"):
        token, token_source = env["MEDFORGE_TOKEN"].strip(), "MEDFORGE_TOKEN"
    elif stored.get("token"):
        token, token_source = str(stored["token"]).strip(), "config"
    else:
        token, token_source = None, "unset"

    pf_path = (env.get("MEDFORGE_PORT_FORWARD_PATH") or stored.get("port_forward_path")
               or DEFAULT_PORT_FORWARD_PATH)
    return Settings(profile=name, url=chosen_url, token=token or None, url_source=url_source,
                    token_source=token_source, port_forward_path=str(pf_path),
                    config_path=file.path)
