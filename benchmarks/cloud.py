"""Cloud Datastore throughput on the emulator: courseport against the plain client.

    python benchmarks/cloud.py [--students 1000] [--rounds 2]

Starts the Cloud Datastore emulator (``--consistency=1.0``, nothing on disk;
``tests/emulator.py`` starts and stops it), writes --students learners into
/sample with ``courseport populate`` (not timed; 1,000 learners are about
15,000 entities, no kind over 10,000), then times, in this one process:

- ``plain scan``: google-cloud-datastore's own client scanning the same kinds
  (every kind of the course's namespace) with the same page size, the floor;
- ``courseport download``: ``etl.download`` of the course's datastore into a
  zip, with 1, 4 and 8 readers (``--readers``);
- ``plain put_multi``: the plain client writing those entities into a new
  namespace in batches of 500, the floor;
- ``courseport upload``: ``etl.upload`` of the archive into a new course.

Each figure is the best of --rounds. Prints one table, with the goals.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]

from courseport import etl  # noqa: E402
from courseport.datastore.cloud import CloudDatastoreBackend  # noqa: E402
from emulator import PROJECT, start_emulator  # noqa: E402

PAGE = 5000  # what courseport reads a page of from a store (LocalSite.min_batch_size)


def courseport(home: Path, *args: str) -> None:
    env = dict(os.environ, COURSEPORT_HOME=str(home), PYTHONPATH=str(ROOT / "src"))
    done = subprocess.run([sys.executable, "-m", "courseport", *args], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"courseport {' '.join(args)} failed: {done.stderr.strip()}")


def best(rounds: int, run) -> tuple[float, int]:
    """(seconds, entities) of the fastest of ``rounds`` runs of ``run()`` (which returns its entities)."""
    figures = []
    for _ in range(rounds):
        began = time.perf_counter()
        entities = run()
        figures.append((time.perf_counter() - began, entities))
    return min(figures)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2)
    opts = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="courseport-cloud-"))
    home = work / "home"
    home.mkdir()
    with start_emulator() as host:
        os.environ["DATASTORE_EMULATOR_HOST"] = host
        url = f"datastore://{PROJECT}?namespace_prefix=bench-"
        print(f"populating /sample with {opts.students:,} learners on the emulator (not timed) ...", file=sys.stderr)
        courseport(home, "init", "--datastore", url)
        courseport(home, "populate", "/sample", "--students", str(opts.students), "--datastore", url)
        from google.cloud import datastore

        client = datastore.Client(project=PROJECT)
        store = CloudDatastoreBackend(PROJECT, namespace_prefix="bench-")
        namespace = "bench-ns_sample"
        kinds = store.kinds("ns_sample")
        sizes = {kind: store.count(kind, "ns_sample") for kind in kinds}

        def plain_scan() -> int:
            total = 0
            for kind in kinds:
                query = client.query(kind=kind, namespace=namespace)
                query.order = ["__key__"]
                for page in query.fetch().pages:
                    total += sum(1 for _ in page)
            return total

        rows = [("plain scan (google-cloud-datastore)", *best(opts.rounds, plain_scan))]
        archive = work / "d.zip"
        for readers in (1, 4, 8):
            def download(readers: int = readers) -> int:
                result = etl.download(url, "/sample", type="datastore", archive_path=archive, force_overwrite=True,
                                      readers=readers, progress=False, batch_size=PAGE)
                return result.entities
            rows.append((f"courseport download, {readers} reader{'s' if readers > 1 else ''}",
                         *best(opts.rounds, download)))

        entities = [e for kind in kinds for e in client.query(kind=kind, namespace=namespace).fetch()]
        round_no = [0]

        def plain_put() -> int:
            round_no[0] += 1
            target = f"bench-put{round_no[0]}"
            copies = []
            for e in entities:
                copy = datastore.Entity(client.key(*e.key.flat_path, namespace=target),
                                        exclude_from_indexes=tuple(e.exclude_from_indexes))
                copy.update(e)
                copies.append(copy)
            for start in range(0, len(copies), 500):
                client.put_multi(copies[start:start + 500])
            return len(copies)

        rows.append(("plain put_multi, batches of 500", *best(opts.rounds, plain_put)))

        def upload() -> int:
            round_no[0] += 1
            slug = f"/up{round_no[0]}"
            courseport(home, "courses", "add", slug, "--datastore", url)
            result = etl.upload(url, slug, type="datastore", archive_path=archive, progress=False, batch_size=500)
            return result.entities

        rows.append(("courseport upload", *best(opts.rounds, upload)))
        store.close()

    scan, put = rows[0], rows[4]
    print(f"\n{opts.students:,} learners on the Cloud Datastore emulator: {sum(sizes.values()):,} entities in "
          f"{len(kinds)} kinds (largest {max(sizes.values()):,}); best of {opts.rounds}; {os.cpu_count()} cores\n")
    print("| run | entities | seconds | entities/s | against its floor |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, seconds, count in rows:
        floor = scan if "download" in name or "scan" in name else put
        ratio = floor[1] / seconds
        print(f"| {name} | {count:,} | {seconds:.2f} | {count / seconds:,.0f} | {ratio:.2f}x |")
    serial, eight, up = rows[1], rows[3], rows[5]
    print("\ngoals: serial download within 20% of the plain scan: "
          f"{'met' if serial[1] <= scan[1] * 1.2 else 'MISSED'} ({serial[1] / scan[1]:.2f}x its time); "
          f"8 readers at least 1.8x the plain scan: {'met' if scan[1] / eight[1] >= 1.8 else 'MISSED'} "
          f"({scan[1] / eight[1]:.2f}x); upload within 20% of plain put_multi: "
          f"{'met' if up[1] <= put[1] * 1.2 else 'MISSED'} ({up[1] / put[1]:.2f}x its time)")


if __name__ == "__main__":
    main()
