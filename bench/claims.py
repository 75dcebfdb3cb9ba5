"""Queue throughput: claimed-and-completed videos per second for 1, 2 and 4 worker processes.

Each worker is a real OS process looping :func:`bot.queue.run_one` with a
no-op handler, so the number measures the queue itself (claim with a lease,
heartbeat thread, complete in one transaction), i.e. the ceiling the
database puts on the pipeline, not the detection engine (seconds per video).

    .venv/bin/python -m bench.claims --database-url postgresql+psycopg://root@127.0.0.1:5432/test
    .venv/bin/python -m bench.claims --database-url sqlite:////tmp/bench.db --videos 1000
    .venv/bin/python -m bench.claims    # FIND_TEST_POSTGRES_URL, else SQLite (it says so)
    .venv/bin/python -m bench.claims --smoke    # 100 videos, 1 and 2 workers: does it run

PostgreSQL runs in a throw-away schema that is dropped afterwards; a SQLite
file is created fresh.  Prints one line per worker count and, with
``--json``, a machine-readable summary.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import time
import uuid
from typing import Any

WORKER_COUNTS = (1, 2, 4)
#: Used when neither --database-url nor FIND_TEST_POSTGRES_URL is given, so that
#: ``make bench`` runs on a fresh clone; the file is recreated for each run.
SQLITE_FALLBACK = "sqlite:////tmp/find-bench-claims.db"


def _worker(url: str, ready: Any, go: Any, index: int, results: Any) -> None:
    from sqlalchemy import text

    from bot.db import dispose_engines
    from bot.queue import WorkQueue, run_one
    from bot.settings import load_settings
    from bot.store import VideoState

    settings = load_settings(environ={"FIND_DATABASE_URL": url, "FIND_DATA_DIR": "/tmp"})
    from bot.db import session_factory

    queue = WorkQueue(session_factory(settings), lease_s=60)

    def handler(_job: Any) -> Any:
        def apply(_session: Any, video: Any) -> None:
            video.state = VideoState.ANALYSED.value

        return apply

    owner = f"bench-{index}-{os.getpid()}"
    with queue.sessions.begin() as session:  # open the connection before the clock starts
        session.execute(text("select 1"))
    ready.set()
    go.wait()
    done = 0
    while run_one(queue, "analyse", owner, handler) is not None:
        done += 1
    results.put(done)
    dispose_engines()


def _prepare(url: str, videos: int) -> None:
    from bot import db
    from bot.db import session_scope
    from bot.settings import load_settings
    from bot.store import Video, VideoState

    settings = load_settings(environ={"FIND_DATABASE_URL": url, "FIND_DATA_DIR": "/tmp"})
    db.upgrade(settings)
    with session_scope(settings) as session:
        session.query(Video).delete()
    with session_scope(settings) as session:
        session.add_all(
            Video(youtube_id=f"b{i:09d}", state=VideoState.DOWNLOADED.value, media_path="x")
            for i in range(videos)
        )
    db.dispose_engines()


def run(url: str, videos: int, workers: int) -> dict[str, Any]:
    _prepare(url, videos)
    ctx = mp.get_context("spawn")
    go = ctx.Event()
    results = ctx.Queue()
    readies = [ctx.Event() for _ in range(workers)]
    procs = [
        ctx.Process(target=_worker, args=(url, readies[i], go, i, results)) for i in range(workers)
    ]
    for proc in procs:
        proc.start()
    for ready in readies:
        ready.wait(120)
    start = time.perf_counter()
    go.set()
    done = [results.get(timeout=600) for _ in procs]
    elapsed = time.perf_counter() - start
    for proc in procs:
        proc.join(30)
    return {
        "workers": workers,
        "videos": sum(done),
        "seconds": round(elapsed, 3),
        "per_second": round(sum(done) / elapsed, 1),
        "per_worker": done,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url",
        default=os.environ.get("FIND_TEST_POSTGRES_URL"),
        help="SQLAlchemy URL (default: FIND_TEST_POSTGRES_URL, else a SQLite file in /tmp)",
    )
    parser.add_argument("--videos", type=int, default=2000)
    parser.add_argument("--workers", type=int, nargs="+", default=list(WORKER_COUNTS))
    parser.add_argument("--json", action="store_true")
    size = parser.add_mutually_exclusive_group()
    size.add_argument(
        "--quick", action="store_true", help="what make bench runs: the defaults (2,000 videos)"
    )
    size.add_argument(
        "--smoke", action="store_true", help="100 videos, 1 and 2 workers (make bench BENCH=smoke)"
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.videos, args.workers = 100, [1, 2]
    if not args.database_url:
        args.database_url = SQLITE_FALLBACK
        print(
            "no --database-url and no FIND_TEST_POSTGRES_URL: measuring SQLite "
            f"({SQLITE_FALLBACK}); set FIND_TEST_POSTGRES_URL for PostgreSQL",
            flush=True,
        )
    url, cleanup = _isolated(args.database_url)
    try:
        rows = []
        for workers in args.workers:
            row = run(url, args.videos, workers)
            rows.append(row)
            print(
                f"{workers} worker(s): {row['videos']} videos in {row['seconds']:.2f} s = "
                f"{row['per_second']:.0f} claimed/s  (per worker {row['per_worker']})",
                flush=True,
            )
    finally:
        cleanup()
    if args.json:
        print(json.dumps({"backend": url.split(":", 1)[0], "cpus": os.cpu_count(), "runs": rows}))
    return 0


def _isolated(url: str) -> tuple[str, Any]:
    """A private schema on PostgreSQL (dropped afterwards); a fresh file for SQLite."""
    import sqlalchemy as sa

    if url.startswith("sqlite"):
        path = url.split("///", 1)[1]
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(path + suffix):
                os.unlink(path + suffix)
        return url, lambda: None
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in url else "?"

    def drop() -> None:
        with engine.connect() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()

    return f"{url}{sep}options=-csearch_path%3D{schema}", drop


if __name__ == "__main__":
    sys.exit(main())
