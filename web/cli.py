"""The ``villagecast`` command line. Every option also reads ``VILLAGECAST_<OPTION>``."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from .settings import ENV_PREFIX, Settings, SettingsError


def _env(name: str, default: Any = None) -> Any:
    return os.environ.get(ENV_PREFIX + name.upper(), default)


def _db_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", type=Path, default=None, help="data directory (default ./data)")
    p.add_argument(
        "--database-url", default=None, help="SQLAlchemy URL (default: SQLite file in the data dir)"
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(
        prog="villagecast",
        description="villagecast — smart village broadcast server (스마트 마을방송)",
        epilog="Every option can also be set as an environment variable VILLAGECAST_<OPTION>, "
        "e.g. VILLAGECAST_PORT=8080.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the server")
    serve.add_argument("--host", default=None, help="bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help="port (default 8080)")
    _db_options(serve)
    serve.add_argument(
        "--demo",
        action="store_true",
        default=None,
        help="load Goseong County, demo users and one demo speaker per district",
    )
    serve.add_argument("--public-url", default=None, help="public base URL (feeds, QR codes)")

    mig = sub.add_parser("migrate", help="create or upgrade the database schema")
    _db_options(mig)

    user = sub.add_parser("user", help="staff accounts").add_subparsers(
        dest="action", required=True
    )
    uadd = user.add_parser("add", help="add a staff account")
    uadd.add_argument("--username", required=True)
    uadd.add_argument("--role", required=True, choices=["admin", "district", "village"])
    uadd.add_argument("--region", required=True, help="region code the account is bound to")
    uadd.add_argument(
        "--password-stdin", action="store_true", required=True, help="read the password from stdin"
    )
    _db_options(uadd)

    device = sub.add_parser("device", help="speaker boxes").add_subparsers(
        dest="action", required=True
    )
    dadd = device.add_parser("add", help="add a speaker box; prints its id and token (once)")
    dadd.add_argument("--kind", default="speaker", choices=["speaker"])
    dadd.add_argument("--village", required=True, help="village code")
    dadd.add_argument("--name", required=True)
    _db_options(dadd)

    regions = sub.add_parser("regions", help="the region tree").add_subparsers(
        dest="action", required=True
    )
    rimp = regions.add_parser("import", help="load a county tree from a JSON file")
    rimp.add_argument("file", type=Path)
    _db_options(rimp)

    speaker = sub.add_parser("speaker", help="the reference smart speaker box")
    speaker.add_argument(
        "--server", default=_env("server"), help="server URL, e.g. http://host:8080"
    )
    speaker.add_argument("--token", default=_env("token"), help="the speaker's token")
    speaker.add_argument("--out", type=Path, default=_env("out"), help="write what it hears here")
    speaker.add_argument(
        "--format", choices=["wav", "mp3"], default=_env("format", None), help="FILE format"
    )

    archive = sub.add_parser("archive", help="the announcement archive").add_subparsers(
        dest="action", required=True
    )
    prune = archive.add_parser("prune", help="delete announcements past the retention period")
    prune.add_argument("--dry-run", action="store_true", help="only list what would be deleted")
    _db_options(prune)

    asrun = sub.add_parser("asrun", help="the signed as-run log").add_subparsers(
        dest="action", required=True
    )
    verify = asrun.add_parser("verify", help="check an export's chain and signatures (offline)")
    verify.add_argument("file", type=Path, help="the JSON Lines export of GET /api/v1/asrun")
    verify.add_argument(
        "--public-key", default=None, help="the county's published key (hex); default: the file's"
    )
    return parser


def settings_from(args: argparse.Namespace) -> Settings:
    """Settings from the environment with the command line's options on top."""
    overrides = {
        name: getattr(args, name, None)
        for name in ("host", "port", "data_dir", "database_url", "demo", "public_url")
    }
    return Settings.from_env(os.environ, **overrides)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``villagecast`` command."""
    args = build_parser().parse_args(argv)
    try:
        settings = settings_from(args)
    except SettingsError as exc:
        print(f"villagecast: {exc}", file=sys.stderr)
        return 2
    command = args.command + (f"_{args.action}" if getattr(args, "action", None) else "")
    runner: Callable[[argparse.Namespace, Settings], int] = COMMANDS[command]
    return runner(args, settings)


def _run_db(settings: Settings, work: Callable[[Any], Awaitable[int]]) -> int:
    """Open the database (migrated), run ``work(session)``, commit, and dispose."""
    from devices.errors import VillagecastError

    from .db import make_engine, make_sessionmaker, migrate

    async def go() -> int:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = make_engine(settings.effective_database_url)
        try:
            await migrate(engine)
            async with make_sessionmaker(engine)() as session:
                rc = await work(session)
                await session.commit()
                return rc
        finally:
            await engine.dispose()

    try:
        return asyncio.run(go())
    except VillagecastError as exc:
        print(f"villagecast: {exc.detail}", file=sys.stderr)
        return 1


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    """Migrate, load the demo when asked, then serve until interrupted."""
    from aiohttp import web

    from .app import create_app
    from .limits import raise_nofile_limit
    from .logs import configure_logging

    configure_logging(settings.log_level, settings.log_format)
    if settings.demo:
        from .demo import load_demo

        async def demo(session: Any) -> int:
            creds = await load_demo(session)
            for username, role, password in creds.users:
                print(f"demo user  {username:12} role={role:8} password={password}")
            for village, dev_id, token in creds.speakers:
                print(f"demo speaker id={dev_id:<4} village={village:32} token={token}")
            if not creds.users:
                print("demo data already loaded (passwords and tokens were printed the first time)")
            return 0

        _run_db(settings, demo)
    print(f"villagecast serving on {settings.base_url}/ (console) and {settings.base_url}/listen")
    sys.stdout.flush()
    raise_nofile_limit()  # before the app sizes its stream cap from the descriptor limit
    web.run_app(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        print=None,
        access_log=None,
        backlog=LISTEN_BACKLOG,
        # aiohttp closes a connection that has not completed a request (slowloris) or sat idle
        # between requests this long after it opened or after its last response
        keepalive_timeout=settings.header_timeout_s,
        shutdown_timeout=10.0,  # in-flight requests get 10 s at SIGTERM, not aiohttp's 60
    )
    return 0


LISTEN_BACKLOG = 4096  # a crowd of boxes reconnecting at once (the kernel caps it at somaxconn)


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    """Create or upgrade the schema."""

    async def noop(session: Any) -> int:
        print("database is up to date")
        return 0

    return _run_db(settings, noop)


def cmd_user_add(args: argparse.Namespace, settings: Settings) -> int:
    """Add a staff account; the password comes from stdin."""
    from devices import store

    password = sys.stdin.readline().rstrip("\r\n")
    if len(password) < 8:
        print("villagecast: the password must have at least 8 characters", file=sys.stderr)
        return 2

    async def add(session: Any) -> int:
        account = await store.create_account(
            session, args.username, password, args.role, args.region
        )
        store.audit(
            session, "cli", "account.add", f"account:{account.id}", args.region, role=args.role
        )
        print(f"id={account.id} username={account.username} role={account.role}")
        return 0

    return _run_db(settings, add)


def cmd_device_add(args: argparse.Namespace, settings: Settings) -> int:
    """Add a speaker box; print its id and token once."""
    from devices import store

    async def add(session: Any) -> int:
        issued = await store.create_device(session, args.village, args.name)
        store.audit(session, "cli", "device.add", f"device:{issued.id}", args.village)
        print(f"id={issued.id}")
        print(f"token={issued.token}")
        return 0

    return _run_db(settings, add)


def cmd_regions_import(args: argparse.Namespace, settings: Settings) -> int:
    """Load a county tree from JSON."""
    from devices import store

    async def imp(session: Any) -> int:
        n = await store.import_regions_file(session, args.file)
        store.audit(session, "cli", "regions.import", str(args.file.name), villages=n)
        print(f"imported {n} villages")
        return 0

    return _run_db(settings, imp)


def _delegate(module: str) -> Callable[[argparse.Namespace, Settings], int]:
    """A command implemented by ``module.run(args, settings)`` (imported when used)."""

    def run(args: argparse.Namespace, settings: Settings) -> int:
        return int(importlib.import_module(module).run(args, settings))

    return run


COMMANDS: dict[str, Callable[[argparse.Namespace, Settings], int]] = {
    "serve": cmd_serve,
    "migrate": cmd_migrate,
    "user_add": cmd_user_add,
    "device_add": cmd_device_add,
    "regions_import": cmd_regions_import,
    "speaker": _delegate("streaming.speaker"),
    "archive_prune": _delegate("web.archive_cli"),
    "asrun_verify": _delegate("web.asrun_cli"),
}

if __name__ == "__main__":
    sys.exit(main())
