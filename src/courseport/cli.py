"""The ``courseport`` command line: a thin layer over the library.

``courseport init | courses | populate | status`` manage the embedded store;
``courseport download | upload | delete | run`` are Course Builder's etl
command line (see :mod:`courseport.etl`).
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import os
import sys
import time
from pathlib import Path
from typing import NoReturn, Sequence

from . import __version__
from ._workers import die_with_parent_if_asked
from .courses.populate import populate
from .courses.sample import install_sample
from .courses.site import Site
from .datastore import DEFAULT_APP_ID, open_store
from .errors import (
    EXIT_BROKEN_PIPE, EXIT_INTERNAL_ERROR, EXIT_INTERRUPTED, EXIT_USER_ERROR, UserError, describe_os_error, one_line,
    write_crash_report,
)
from .etl.commands import main as etl_main

ETL_MODES = ("download", "upload", "delete", "run")

#: errors a user can cause (every one a UserError): one line, exit status 1
USER_ERRORS: tuple[type[BaseException], ...] = (UserError,)


class UsageError(UserError, ValueError):
    """Bad arguments, caught before anything is opened."""


def _add_datastore(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--datastore", default="local", metavar="D",
        help="'local' (the store under COURSEPORT_HOME, default), sqlite:///path/file.db, or "
             "datastore://PROJECT (Google Cloud Datastore; docs/store.md)",
    )


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 1, like every other error
        self.exit(1, f"{self.prog}: error: {message} (see '{self.prog} -h')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="courseport",
        description="Course Builder course data, out and back in. "
        "Modes download|upload|delete|run take Course Builder's etl arguments "
        "(courseport download -h).",
    )
    parser.add_argument("--version", action="version", version=f"courseport {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser,
                                help="what to do (courseport COMMAND -h tells more)")

    init = sub.add_parser("init", help="create the store and install the sample course at /sample")
    init.add_argument("--app_id", "--app-id", dest="app_id", default=None,
                      help=f"application id of a new store (default {DEFAULT_APP_ID!r})")
    _add_datastore(init)

    courses = sub.add_parser("courses", help="list or add courses")
    courses_sub = courses.add_subparsers(dest="courses_command", metavar="ACTION", required=True,
                                         help="add or list")
    add = courses_sub.add_parser("add", help="add an empty course, e.g. /physics")
    add.add_argument("prefix", help="the course's URL prefix, e.g. /physics ([_a-z0-9-], 2-99 characters)")
    add.add_argument("--title", default=None, help="course title (default: the name)")
    _add_datastore(add)
    listing = courses_sub.add_parser("list", help="list the courses")
    _add_datastore(listing)

    pop = sub.add_parser("populate", help="write synthetic learners into a course")
    pop.add_argument("prefix", help="the course's URL prefix, e.g. /sample")
    pop.add_argument("--students", type=int, required=True, metavar="N",
                     help="how many learners to write (at least 1)")
    pop.add_argument("--seed", type=int, default=0, metavar="S",
                     help="random seed: the same seed writes the same learners (default 0)")
    _add_datastore(pop)

    status = sub.add_parser("status", help="show what the store holds")
    _add_datastore(status)

    serve = sub.add_parser("serve", help="run the course server and its remote API (docs/server.md)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8081, help="port (default 8081, Course Builder's etl default)")
    serve.add_argument("--workers", type=int, default=1, metavar="N", help="worker processes (default 1)")
    serve.add_argument("--certfile", type=Path, default=None, metavar="F", help="TLS certificate (PEM): serve https")
    serve.add_argument("--keyfile", type=Path, default=None, metavar="F", help="TLS private key (PEM)")
    serve.add_argument("--allow_insecure_http", "--allow-insecure-http", action="store_true",
                       help="accept API requests over plain http from other machines (a trusted network only)")
    serve.add_argument("--forwarded_allow_ips", "--forwarded-allow-ips", default=None, metavar="IPS",
                       help="trust X-Forwarded-Proto/For from these reverse proxy addresses")
    serve.add_argument("--access_log", "--access-log", action="store_true",
                       help="log a line per request (off by default, as gunicorn: it costs a busy site about "
                            "a tenth of its throughput; courseport's own lines, such as failed sign-ins, are always logged)")
    _add_datastore(serve)

    users = sub.add_parser("users", help="add or list the server's accounts")
    users_sub = users.add_subparsers(dest="users_command", metavar="ACTION", required=True, help="add or list")
    user_add = users_sub.add_parser("add", help="add an account; asks for its sign-in password (or reads stdin)")
    user_add.add_argument("email", help="the account's email, its sign-in name")
    user_add.add_argument("--admin", action="store_true", help="an admin (may use the remote API)")
    _add_datastore(user_add)
    _add_datastore(users_sub.add_parser("list", help="list the accounts"))
    role = users_sub.add_parser("role", help="make an account an admin, or a learner again")
    role.add_argument("email", help="the account")
    role.add_argument("role", choices=("admin", "learner"), help="its new role")
    _add_datastore(role)
    remove = users_sub.add_parser("remove", help="remove an account and its app-specific passwords")
    remove.add_argument("email", help="the account (what it did in courses stays: that is course data)")
    _add_datastore(remove)
    invite = users_sub.add_parser("invite", help="let an email sign up when sign-up is by invitation")
    invite.add_argument("email", help="the email that may sign up")
    _add_datastore(invite)

    settings = sub.add_parser("settings", help="show or change site settings, or a course's (docs/server.md)")
    settings_sub = settings.add_subparsers(dest="settings_command", metavar="ACTION", required=True,
                                           help="list or set")
    settings_list = settings_sub.add_parser("list", help="every site setting (or a course's) and its value")
    settings_list.add_argument("--course", default=None, metavar="PREFIX", help="a course's settings instead")
    _add_datastore(settings_list)
    settings_set = settings_sub.add_parser(
        "set", help="change one: record_events on|off, signup open|invitation, export_retention_days DAYS; with --course: "
                    "availability private|registration_required|registration_optional|public, "
                    "can_record_student_events true|false, title TEXT")
    settings_set.add_argument("name", help="the setting")
    settings_set.add_argument("value", help="its new value")
    settings_set.add_argument("--course", default=None, metavar="PREFIX",
                              help="change this course's course.yaml instead of a site setting")
    _add_datastore(settings_set)

    app_pw = sub.add_parser("app-password", help="create, list or revoke app-specific passwords")
    app_sub = app_pw.add_subparsers(dest="app_password_command", metavar="ACTION", required=True,
                                    help="create, list or revoke")
    create = app_sub.add_parser("create", help="create one and print it, once")
    create.add_argument("--email", required=True, help="the account it signs in")
    create.add_argument("--name", default=None, help="what it is for, e.g. 'etl on my laptop'")
    _add_datastore(create)
    app_list = app_sub.add_parser("list", help="name, created and last used")
    app_list.add_argument("--email", default=None, help="only this account's (default: every account's)")
    _add_datastore(app_list)
    revoke = app_sub.add_parser("revoke", help="revoke one, by its id or name")
    revoke.add_argument("--email", required=True, help="the account it belongs to")
    revoke.add_argument("which", metavar="ID_OR_NAME", help="its id or name, as 'app-password list' shows them")
    _add_datastore(revoke)

    for mode in ETL_MODES:
        sub.add_parser(mode, help=f"Course Builder etl: {mode} (courseport {mode} -h)", add_help=False)
    verify = sub.add_parser("verify", help="check an archive: members, rows, checksums, course files")
    verify.add_argument("--archive_path", "--archive-path", dest="archive_path", required=True,
                        help="the archive to check: a zip file, or a directory")
    verify.add_argument("--archive_type", "--archive-type", dest="archive_type",
                        choices=("zip", "directory"), default=None,
                        help="zip or directory (default: what the path is)")
    return parser


def _out(text: str = "") -> None:
    print(text, flush=True)


def cmd_init(args: argparse.Namespace) -> int:
    with open_store(args.datastore) as store:
        current = store.get_meta("app_id")
        if current is None:
            store.set_meta("app_id", args.app_id or DEFAULT_APP_ID)
        elif args.app_id and args.app_id != current:
            raise UsageError(
                f"the store at {store.url} already has app id {current!r}; "
                f"use another COURSEPORT_HOME or --datastore for app id {args.app_id!r}"
            )
        site = Site(store)
        course = install_sample(site)
        _out(f"store: {store.url} (app id {store.app_id!r})")
        if course:
            _out(f"installed the sample course at {course.slug} ({course.raw}): {course.title}")
        else:
            _out("the sample course is already installed at /sample")
    return 0


def cmd_courses(args: argparse.Namespace) -> int:
    with open_store(args.datastore) as store:
        site = Site(store)
        if args.courses_command == "add":
            course = site.add_course(args.prefix, args.title)
            _out(f"added {course.slug} ({course.raw})")
            return 0
        rules = site.rules()
        if not rules:
            _out("no courses: run 'courseport init' or 'courseport courses add /name'")
        for course in site.courses():
            _out(f"{course.slug}\t{course.raw}\t{_safe_title(course)}")
    return 0


def _safe_title(course) -> str:
    try:
        return course.title
    except USER_ERRORS as exc:
        return f"(unreadable course.yaml: {exc})"


def cmd_populate(args: argparse.Namespace) -> int:
    if args.students < 1:
        raise UsageError("--students must be at least 1")
    with open_store(args.datastore, create=False) as store:
        course = Site(store).course(args.prefix)
        with store.exclusive(f"courseport populate {course.slug}"):
            started = time.perf_counter()
            counts = populate(course, args.students, args.seed)
            elapsed = time.perf_counter() - started
    total = sum(counts.values())
    _out(f"populated {course.slug} with {args.students:,} students (seed {args.seed}): "
         f"{total:,} entities in {elapsed:.1f}s ({total / max(elapsed, 1e-9):,.0f} entities/s)")
    for kind in sorted(counts):
        _out(f"  {kind:<24}{counts[kind]:>12,}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    with open_store(args.datastore, create=False) as store:
        site = Site(store)
        _out(f"store: {store.url} (app id {store.app_id!r})")
        for course in site.courses():
            _out(f"{course.slug}  {course.raw}  {_safe_title(course)}")
            for kind in store.kinds(course.namespace):
                _out(f"  {kind:<28}{store.count(kind, course.namespace):>12,}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from .etl import verify

    report = verify(args.archive_path, archive_type=args.archive_type)
    for line in report.lines():
        _out(line)
    return 0 if report.ok else 1


def cmd_serve(args: argparse.Namespace) -> int:
    from .server.serve import ServeOptions, serve

    serve(ServeOptions(
        host=args.host, port=args.port, datastore=args.datastore, workers=args.workers,
        certfile=args.certfile, keyfile=args.keyfile, allow_insecure_http=args.allow_insecure_http,
        forwarded_allow_ips=args.forwarded_allow_ips, access_log=args.access_log,
    ))
    return 0


def _read_new_password(email: str) -> str:
    if sys.stdin.isatty():
        first = getpass.getpass(f"sign-in password for {email}: ")
        if getpass.getpass("again: ") != first:
            raise UsageError("the two passwords differ: run the command again")
        return first
    line = sys.stdin.readline()
    if not line:
        raise UsageError("no password on stdin: pipe one line, or run it in a terminal to be asked")
    return line.rstrip("\r\n")


def cmd_users(args: argparse.Namespace) -> int:
    from .server.accounts import Accounts

    with open_store(args.datastore, create=False) as store:
        accounts = Accounts(store)
        if args.users_command == "add":
            account = accounts.add_user(args.email, _read_new_password(args.email), admin=args.admin)
            _out(f"added {account.email}{' (admin)' if account.admin else ''}")
            return 0
        if args.users_command == "role":
            account = accounts.set_admin(args.email, args.role == "admin")
            _out(f"{account.email} is now {'an admin' if account.admin else 'a learner'}")
            return 0
        if args.users_command == "remove":
            account = accounts.remove_user(args.email)
            _out(f"removed {account.email} and its app-specific passwords")
            return 0
        if args.users_command == "invite":
            _out(f"invited {accounts.invite(args.email)}: it may now sign up at /accounts/signup")
            return 0
        for account in accounts.users():
            _out(f"{account.email}\t{'admin' if account.admin else 'learner'}")
    return 0


def cmd_app_password(args: argparse.Namespace) -> int:
    from .server.accounts import Accounts, format_token

    with open_store(args.datastore, create=False) as store:
        accounts = Accounts(store)
        if args.app_password_command == "create":
            info, token = accounts.create_app_password(args.email, args.name)
            _out(f"app-specific password {info.name!r} (id {info.id}) for {info.email}; "
                 "it is shown this once:")
            _out(format_token(token))
        elif args.app_password_command == "revoke":
            info = accounts.revoke_app_password(args.email, args.which)
            _out(f"revoked {info.name!r} (id {info.id}) of {info.email}")
        else:
            for info in accounts.app_passwords(args.email):
                used = f"{info.last_used:%Y-%m-%d %H:%M}" if info.last_used else "never"
                _out(f"{info.id}\t{info.email}\t{info.name}\tcreated {info.created:%Y-%m-%d %H:%M}\tlast used {used}")
    return 0


def cmd_settings(args: argparse.Namespace) -> int:
    from .courses.settings import COURSE_SETTINGS, availability, dump_course_yaml, with_course_setting
    from .courses.site import Site
    from .courses.site_settings import SETTINGS, SiteSettings

    with open_store(args.datastore, create=False) as store:
        if args.course is None:
            site = SiteSettings(store)
            if args.settings_command == "set":
                value = site.set(args.name, args.value)
                _out(f"{args.name} = {_shown(value)}")
                return 0
            for name, value in site.all().items():
                _out(f"{name}\t{_shown(value)}\t{SETTINGS[name].help}")
            return 0
        course = Site(store).course(args.course)
        settings = course.settings()
        if args.settings_command == "set":
            settings = with_course_setting(settings, args.name, args.value)
            course.save_settings_text(dump_course_yaml(settings))
        found = settings.get("course")
        section: dict = found if isinstance(found, dict) else {}
        found_form = settings.get("reg_form")
        reg_form: dict = found_form if isinstance(found_form, dict) else {}
        values = {"availability": availability(settings),
                  "can_record_student_events": section.get("can_record_student_events", True),
                  "title": section.get("title", ""),
                  "registration_header": reg_form.get("header_text", ""),
                  "registration_fields": reg_form.get("additional_registration_fields", "")}
        for name in COURSE_SETTINGS:
            if args.settings_command == "list" or name == args.name:
                _out(f"{course.slug} {name} = {_shown(values[name])}")
    return 0


def _shown(value: object) -> str:
    return ("on" if value else "off") if isinstance(value, bool) else str(value)


COMMANDS = {"settings": cmd_settings, "serve": cmd_serve, "users": cmd_users, "app-password": cmd_app_password, "verify": cmd_verify, "init": cmd_init, "courses": cmd_courses, "populate": cmd_populate, "status": cmd_status}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    die_with_parent_if_asked()
    if argv and argv[0] in ETL_MODES:
        return _guard(lambda: etl_main(argv))
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    return _guard(lambda: COMMANDS[args.command](args))


def _guard(action) -> int:
    """Run a command: a user's error is one line and exit status 1; a bug is
    one line naming where its traceback was written, and exit status 70."""
    try:
        return action()
    except UserError as exc:
        print(f"courseport: error: {one_line(str(exc))}", file=sys.stderr)
        return EXIT_USER_ERROR
    except BrokenPipeError:  # the reader went away (`courseport status | head -1`): quietly, as a shell tool would
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except OSError as exc:  # the machine's refusal: a full disk, a permission, a read-only folder
        print(f"courseport: error: {one_line(describe_os_error(exc))}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("courseport: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - anything else is courseport's bug
        where = write_crash_report(exc)
        print(
            f"courseport: internal error ({type(exc).__name__}): this is a bug in courseport, "
            f"not in your data or arguments; the full traceback is in {where}. "
            "Interrupted downloads and uploads can be continued with --resume",
            file=sys.stderr,
        )
        return EXIT_INTERNAL_ERROR


if __name__ == "__main__":
    raise SystemExit(main())
