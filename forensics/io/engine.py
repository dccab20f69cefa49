"""Scale-out on Dask (``--scheduler``): chunks of files are decoded and scored by Dask workers,
and the results come back to the caller in file order, so a distributed run writes the same
rows, in the same order, as a single-process run.

``--scheduler local`` (or ``local:N``) starts a local cluster of ``N`` worker processes (default:
the cores); anything else is the address of a running scheduler (``tcp://host:8786``), whose
workers must see the input files and the model folder under the same paths (a shared or
replicated file system) and have this toolkit installed. Dask is an optional dependency
(``pip install fourier-forensics[dask]``).
"""
from __future__ import annotations

import os
from collections import deque
from contextlib import closing, contextmanager

from forensics.io.images import Loaded, load_image


def parse_scheduler(text: str) -> tuple[str, int | None]:
    """``("local", n_workers or None)`` or ``("address", None)``; ``ValueError`` if malformed."""
    if text is None or not str(text).strip():
        raise ValueError("scheduler must be 'local', 'local:N' or an address such as tcp://host:8786")
    text = str(text).strip()
    if text == "local" or text.startswith("local:"):
        n = text[6:]
        if text != "local" and (not n.isdigit() or int(n) < 1):
            raise ValueError(f"scheduler {text!r}: local:N needs a number of workers N >= 1")
        return "local", int(n) if text != "local" else None
    if "://" not in text and ":" not in text:
        raise ValueError(f"scheduler {text!r}: use local, local:N or an address such as tcp://host:8786")
    return text, None


@contextmanager
def client(scheduler: str):
    """A ``distributed.Client`` for ``scheduler`` (a local cluster is closed on exit)."""
    where, n = parse_scheduler(scheduler)
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise ValueError("a scheduler needs Dask: pip install 'fourier-forensics[dask]'") from None
    if where == "local":
        cluster = LocalCluster(n_workers=n or (os.cpu_count() or 1), threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=50)
        try:
            with Client(cluster) as c:
                yield c
        finally:
            cluster.close()
    else:
        try:
            c = Client(where, timeout=10)
        except OSError as e:
            raise OSError(f"cannot reach Dask scheduler {where} ({e})") from None
        try:
            yield c
        finally:
            c.close()


def _load_apply(paths, policy, keep, fn, start=None):
    """On a worker: load ``paths``, apply ``fn`` to the kept images (and, with ``start``, their
    files' positions: ``start`` + index in ``paths``), return the :class:`Loaded` records
    without pixels, the kept indices and ``fn``'s result."""
    loaded = [load_image(p, policy) for p in paths]
    kept = [i for i, r in enumerate(loaded) if keep(r)]
    images = [loaded[i].image for i in kept]
    res = (fn(images) if start is None else fn(images, [start + i for i in kept])) if kept else None
    light = [Loaded(r.path, None, r.width, r.height, r.error, r.grey) for r in loaded]
    return light, kept, res


def in_order(c, calls, in_flight: int | None = None):
    """The results of ``calls`` (an iterable of ``(fn, *args)``) run on the workers of client ``c``,
    in order; at most ``in_flight`` are submitted at once (default: twice the workers), so memory
    stays bounded on both sides. Tasks not yet collected are cancelled when the caller stops."""
    limit = in_flight or 2 * max(1, len(c.scheduler_info().get("workers", {})))
    pending: deque = deque()
    calls = iter(calls)
    try:
        while True:
            while len(pending) < limit:
                call = next(calls, None)
                if call is None:
                    break
                pending.append(c.submit(*call, pure=False))
            if not pending:
                return
            yield pending.popleft().result()
    finally:
        for f in pending:
            f.cancel()


def dask_chunks(c, files, policy, keep, fn, chunk: int = 64, in_flight: int | None = None,
                positions: bool = False):
    """Like :func:`forensics.io.images.map_chunks` (``(loaded, kept, result)`` per chunk, in file
    order), with the chunks run on the workers of client ``c``; at most ``in_flight`` chunks
    are submitted at once (default: twice the workers), so memory stays bounded on both sides.
    ``keep`` and ``fn`` must be picklable (module-level functions or their partials); with
    ``positions``, ``fn(images, positions)`` as in ``map_chunks``."""
    calls = ((_load_apply, [os.fspath(f) for f in files[i:i + chunk]], policy, keep, fn, i if positions else None)
             for i in range(0, len(files), chunk))
    with closing(in_order(c, calls, in_flight)) as results:  # stopping early cancels the pending tasks
        for loaded, kept, res in results:
            yield loaded, [loaded[i] for i in kept], res


@contextmanager
def engine(scheduler: str | None):
    """``None`` (work in this process) when ``scheduler`` is None, else a Dask client for it
    (:func:`client`): the one ``with`` that every verb with ``--scheduler`` runs its chunks in."""
    if scheduler is None:
        yield None
    else:
        with client(scheduler) as c:
            yield c
