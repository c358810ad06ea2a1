"""`medforge`: the root command, login/logout/whoami, and the entry point that turns every
error into one line and an exit code."""
from __future__ import annotations

import sys
from typing import Annotated

import httpx
import typer

from . import __version__, config
from .api_fields import get
from .commands import competitions, packs, sessions, snapshots, tokens
from .common import FormatOpt, State, examples, state
from .errors import INTERRUPTED, ApiError, AuthError, CliError, UsageError
from .output import Column, Format, human_bool, note, render, stderr_console

HELP = """MedForge from a terminal: GPU IDE sessions and competitions.

Log in once with a personal API token (create one on the site under Account → API tokens),
then start a session, open it, forward a port, submit to a competition.

Output is a table on a terminal and JSON when piped (`--format table|json|csv` on every
command). Exit codes: 0 ok, 1 the operation failed (session error, scoring failed, timeout),
2 usage or input refused, 3 authentication, 4 not found, 5 conflict or cap (no free GPU,
session limit, daily submissions), 6 server or network.
"""

EXAMPLES = examples(
    "medforge login --url https://medforge.example.org",
    'echo "$TOKEN" | medforge login --url https://medforge.example.org --token-stdin',
    "medforge sessions start --wait --open",
    "medforge sessions port-forward current 6006:6006",
    'medforge competitions submit titanic-survival preds.csv -m "xgboost" --wait',
    "medforge --profile work sessions list -o csv",
)

app = typer.Typer(
    name="medforge", help=HELP, epilog=EXAMPLES, no_args_is_help=True, add_completion=True,
    rich_markup_mode=None,
    # Never print local variables of a crash: they hold the API token.
    pretty_exceptions_enable=False, pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
app.add_typer(tokens.app, name="tokens")
app.add_typer(packs.app, name="packs")
app.add_typer(sessions.app, name="sessions")
app.add_typer(snapshots.app, name="snapshots")
app.add_typer(competitions.app, name="competitions")


def _version(value: bool) -> None:
    if value:
        print(f"medforge-cli {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    profile: Annotated[str | None, typer.Option(
        "--profile", "-p", help="Configuration profile (default: $MEDFORGE_PROFILE, else the "
        "file's default_profile, else 'default').")] = None,
    fmt: FormatOpt = None,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    current = ctx.obj if isinstance(ctx.obj, State) else State()
    if isinstance(ctx.obj, dict):  # tests hand in transports
        current.transport = ctx.obj.get("transport")
        current.async_transport = ctx.obj.get("async_transport")
    current.profile = profile
    current.format = fmt
    ctx.obj = current


USER_COLUMNS = [
    Column("handle", "user", "handle"),
    Column("email", "user", "email"),
    Column("display name", "user", "display_name"),
    Column("admin", "user", "is_admin", human_bool),
    Column("internal access", "user", "can_use_internal", human_bool),
    Column("session limit", "user", "max_concurrent_sessions"),
    Column("id", "user", "id"),
]


@app.command(epilog=examples(
    'medforge login --url https://medforge.example.org',
    'medforge login --url https://medforge.example.org --token-stdin < token.txt',
    'medforge --profile staging login --url https://staging.medforge.example.org',
))
def login(
    ctx: typer.Context,
    url: Annotated[str | None, typer.Option("--url", help="The site, e.g. "
                                            "https://medforge.example.org (default: "
                                            "$MEDFORGE_URL or the profile's).")] = None,
    token_stdin: Annotated[bool, typer.Option("--token-stdin", help="Read the token from "
                                              "standard input instead of prompting.")] = False,
    fmt: FormatOpt = None,
) -> None:
    """Store the site's URL and your personal API token (checked first) in the profile."""
    st = state(ctx)
    settings = st.settings(url)
    base = settings.url
    if not base:
        if not sys.stdin.isatty() or token_stdin:
            raise UsageError("No URL: pass --url https://medforge.example.org (or set MEDFORGE_URL).")
        base = config.normalize_url(typer.prompt("MedForge URL"))
    if token_stdin:
        token = sys.stdin.readline().strip()
    else:
        if not sys.stdin.isatty():
            raise UsageError("No terminal to prompt on: pass the token with --token-stdin.")
        note(f"Create a personal API token at {base}/account/tokens/ and paste it here.")
        token = typer.prompt("Token", hide_input=True).strip()
    if not token:
        raise UsageError("The token is empty.")
    from .client import Api

    with Api(base, token, transport=st.transport) as api:
        try:
            user = api.data("GET", "/me")
        except ApiError as exc:
            if exc.status == 401:
                raise AuthError(f"The token was refused by {base}: {exc.one_line()}") from None
            raise
    file = config.ConfigFile(settings.config_path)
    file.set_profile(settings.profile, url=base, token=token)
    note(f"Logged in to {base} as {get('user', user, 'handle')} ({get('user', user, 'email')}); "
         f"profile '{settings.profile}' saved in {settings.config_path}.")
    if settings.token_source == "MEDFORGE_TOKEN":
        note("Note: MEDFORGE_TOKEN is set and takes precedence over the stored token.")
    if st.fmt(fmt) is not Format.table:
        render(user, USER_COLUMNS, st.fmt(fmt), many=False)


@app.command()
def logout(
    ctx: typer.Context,
    revoke: Annotated[bool, typer.Option("--revoke", help="Also revoke the token on the "
                                         "server, so it stops working everywhere.")] = False,
) -> None:
    """Forget the profile's stored token (the URL stays)."""
    st = state(ctx)
    settings = st.settings()
    if revoke:
        with st.api() as api:
            token = settings.require_token()
            match = [t for t in api.paginate("/me/tokens", limit=1000)
                     if get("token", t, "prefix") and token.startswith(str(get("token", t, "prefix")))
                     and get("token", t, "active")]
            if match:
                api.data("DELETE", f"/me/tokens/{get('token', match[0], 'id')}")
                note(f"Revoked token {get('token', match[0], 'prefix')}… ({get('token', match[0], 'name')}).")
            else:
                note("The token was not found among your active tokens; nothing revoked.")
    removed = config.ConfigFile(settings.config_path).remove_token(settings.profile)
    if removed:
        note(f"Logged out: the token of profile '{settings.profile}' was removed from "
             f"{settings.config_path}.")
    else:
        note(f"Profile '{settings.profile}' holds no token.")
    if settings.token_source == "MEDFORGE_TOKEN":
        note("MEDFORGE_TOKEN is still set in this environment.")


@app.command()
def whoami(ctx: typer.Context, fmt: FormatOpt = None) -> None:
    """Who the token belongs to, on which site and profile."""
    st = state(ctx)
    settings = st.settings()
    with st.api() as api:
        user = api.data("GET", "/me")
    out = st.fmt(fmt)
    render(user, USER_COLUMNS, out, many=False)
    if out is Format.table:
        note(f"{settings.url} (URL from {settings.url_source}, token from {settings.token_source}, "
             f"profile '{settings.profile}')")


# --- the entry point ------------------------------------------------------------------------------


def report(exc: CliError) -> None:
    console = stderr_console()
    console.print(f"medforge: error: {exc.one_line()}", markup=False, highlight=False, soft_wrap=True)
    for line in exc.details():
        console.print(f"  {line}", markup=False, highlight=False, soft_wrap=True)


def main(argv: list[str] | None = None, *, transport: httpx.BaseTransport | None = None,
         async_transport: httpx.AsyncBaseTransport | None = None) -> None:
    """Run the CLI; exits with the code of the error class (see `medforge --help`)."""
    command = typer.main.get_command(app)
    obj = {"transport": transport, "async_transport": async_transport}
    try:
        result = command.main(args=argv, prog_name="medforge", standalone_mode=False, obj=obj)
    except typer.Exit as exc:
        raise SystemExit(exc.exit_code) from None
    except typer.Abort:
        print("\nAborted.", file=sys.stderr)
        raise SystemExit(INTERRUPTED) from None
    except typer.TyperException as exc:  # usage errors: click's messages and exit code 2
        show = getattr(exc, "show", None)
        if show is not None:
            show()
        else:
            print(f"medforge: error: {exc.format_message()}", file=sys.stderr)
        raise SystemExit(exc.exit_code) from None
    except KeyboardInterrupt:
        print("\nInterrupted.", file=sys.stderr)
        raise SystemExit(INTERRUPTED) from None
    except CliError as exc:
        report(exc)
        raise SystemExit(exc.exit_code) from None
    except BrokenPipeError:
        raise SystemExit(0) from None
    raise SystemExit(result if isinstance(result, int) else 0)
