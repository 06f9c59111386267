"""Equal copies of one store, on sqlite or on the Cloud Datastore emulator, for tests that
compare what one command does to two of them (directly, and through a server on the other).

Not a test module: tests import what they use (``tests/`` is on ``sys.path``)::

    from copies import StoreCopy, copy_store

``copy_store(template, home, emulator)``  a copy of the sqlite store of the
        ``template`` home: the file itself, or (``emulator`` given: its
        ``host:port``) every entity of every namespace put, key for key, under
        a namespace prefix of its own on the emulator, so copies never see
        each other. Allocated ids are the template's, so two copies are equal
        where two ``populate`` runs on the service would not be.
``serving_copy(template, where)``  a server on a sqlite copy, for the block.
``StoreCopy``  the copy's home, its name for the command line (``target``:
        ``local`` or a ``datastore://`` address), the environment that reaches
        it; ``cli()``, ``open()``, ``rows(namespace)`` and ``serve()``.
"""

from __future__ import annotations

import contextlib
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from conftest import cli_at, db_path, dump_raw
from emulator import cloud_url
from servers import Server, start_server


@dataclass
class StoreCopy:
    home: Path
    target: str = "local"
    env: dict[str, str] = field(default_factory=dict)

    @property
    def on_cloud(self) -> bool:
        return self.target != "local"

    @property
    def datastore(self) -> list[str]:
        """The store commands' ``--datastore`` option for this copy (none for ``local``)."""
        return ["--datastore", self.target] if self.on_cloud else []

    def cli(self, *args: Any, extra_env: dict[str, str] | None = None, **kwargs: Any) -> Any:
        return cli_at(self.home, *args, extra_env={**self.env, **(extra_env or {})}, **kwargs)

    def open(self) -> Any:
        if self.on_cloud:
            from courseport.datastore.cloud import CloudDatastoreBackend, parse_url

            return CloudDatastoreBackend(**parse_url(self.target), emulator=self.env["DATASTORE_EMULATOR_HOST"])
        from courseport.datastore import SqliteBackend

        return SqliteBackend(db_path(self.home), create=False)

    def rows(self, namespace: str) -> dict[str, list]:
        """Every row of ``namespace`` by kind, as ``(key, data)``; course files' write times
        (stamped as they are written) masked."""
        with self.open() as store:
            return _rows(store, namespace)

    def serve(self, *args: str, app_password: str | None = None) -> Server:
        """``courseport serve`` on this copy (stop it after)."""
        return start_server(self.home, *args, app_password=app_password, datastore=self.target, env=self.env)


@contextlib.contextmanager
def serving_copy(template: Path, where: Path, *args: str) -> Iterator[Server]:
    """A server on a sqlite copy of ``template``'s store, in ``where``/home; stopped after."""
    running = copy_store(template, where / "home").serve(*args)
    try:
        yield running
    finally:
        running.stop()


def copy_store(template: Path, home: Path, emulator: str | None = None) -> StoreCopy:
    home.mkdir(parents=True)
    if emulator is None:
        shutil.copyfile(db_path(template), db_path(home))
        return StoreCopy(home)
    copy = StoreCopy(home, cloud_url(), {"DATASTORE_EMULATOR_HOST": emulator})
    from courseport.datastore import SqliteBackend
    from courseport.datastore.backend import batched

    with SqliteBackend(db_path(template), create=False) as source, copy.open() as target:
        for namespace in source.namespaces():
            for kind in source.kinds(namespace):
                for page in batched(source.query(kind, namespace, batch_size=500), 500):
                    target.put_multi(page)
    return copy


_WRITTEN_AT = re.compile(r'"(created_on|updated_on)": "[^"]*"')
_WRITE_TIMES = ("created_on", "updated_on")


def _rows(store: Any, namespace: str) -> dict[str, list]:
    if store.fetch_raw_page("Student", namespace, limit=1) is not None:  # sqlite: its stored JSON
        return {kind: [(key, _WRITTEN_AT.sub(r'"\1": "T"', data) if kind == "FileMetadataEntity" else data)
                       for key, data in rows]
                for (ns, kind), rows in dump_raw(store).items() if ns == namespace}
    rows: dict[str, list] = {}
    for kind in store.kinds(namespace):
        masked = _WRITE_TIMES if kind == "FileMetadataEntity" else ()
        rows[kind] = [(entity.key, repr(sorted((name, "T" if name in masked else value)
                                               for name, value in entity.items())))
                      for entity in store.query(kind, namespace)]
    return rows
