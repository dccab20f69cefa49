"""The one scoring path: decoded images, chunk by chunk, through a detector (in process, or on
Dask workers that load the model from its folder). ``detect``, ``evaluate``, ``calibrate`` and
``robustness`` all stream their files through :func:`score_chunks`."""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from forensics.core.progress import bar
from forensics.core.reproducible import one_blas_thread, pin_blas_to_one_thread
from forensics.detectors.store import load_model, model_folder
from forensics.io.images import Policy, Prefetcher, is_greyscale, map_chunks, scan_nonempty
from forensics.spectral import spectrum

#: files per chunk handed to a detector (fewer once their decoded images reach the byte budget)
CHUNK = 128


class MinSide:
    """``keep`` for :func:`map_chunks`: decoded images at least ``side`` px, else an error row;
    with ``mark_grey``, each decoded record also says whether it is greyscale (``r.grey``: it runs
    where the image is decoded, so the mark comes back from Dask workers too)."""

    def __init__(self, side: int, who: str, mark_grey: bool = False):
        self.side, self.who, self.mark_grey = side, who, mark_grey

    def __call__(self, r) -> bool:
        if r.ok and min(r.image.shape[:2]) < self.side:
            r.error = f"image is {r.image.shape[1]}x{r.image.shape[0]}; {self.who} needs at least {self.side}x{self.side}"
        if self.mark_grey and r.ok:
            r.grey = is_greyscale(r.image)
        return r.ok


def score_images(det, images, device: str = "numpy"):
    """``det``'s scores of decoded images, features on NumPy or torch (``device``)."""
    if device == "numpy" or getattr(det, "features", None) is None:
        return det.p_generated(images)
    from forensics.spectral import spectrum_torch

    return det.p_generated(spectrum_torch.features(images, det.features, device))


def model_stamp(model_dir) -> tuple:
    """The names, sizes and modification times of a model folder's files (a worker reloads
    its cached copy when they change)."""
    folder = model_folder(model_dir)
    return tuple(sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in folder.iterdir() if p.is_file()))


class ChunkScorer:
    """Scores of one chunk of decoded images, NaN where the detector cannot score one: picklable
    for Dask workers (built with ``model_dir`` only, the model is loaded once per worker) or
    holding a loaded ``det`` in process. ``transform(images, positions) -> images`` (file
    positions, for seeding) runs first; images it leaves below the detector's minimum side
    get NaN."""

    def __init__(self, model_dir=None, device: str = "numpy", transform=None, det=None):
        self.model_dir = None if model_dir is None else str(model_dir)
        self.device, self.transform, self.det = device, transform, det

    def __getstate__(self):
        return {**self.__dict__, "det": None}  # a worker loads its own copy

    def __call__(self, images, positions=None):
        if self.det is not None:
            det = self.det
        else:  # on a worker
            pin_blas_to_one_thread()
            det = cached_model(self.model_dir, model_stamp(self.model_dir))
        if self.transform is not None:
            images = self.transform(images, positions)
        side = getattr(det, "min_size", 1)
        ok = [j for j, im in enumerate(images) if min(im.shape[:2]) >= side]
        s = np.full(len(images), np.nan)
        if ok:
            s[ok] = spectrum.single_threaded(score_images)(det, [images[j] for j in ok], self.device)
        return s


def _decoded(r) -> bool:
    """``keep`` for transformed scans: every decoded image (sizes are checked after the transform)."""
    return r.ok


def score_chunks(det, files, policy, model_dir=None, client=None, device: str = "numpy", chunk: int = CHUNK,
                 transform=None, prefetch=None, mark_grey: bool = False):
    """The one scoring path of ``detect``, ``evaluate``, ``calibrate`` and ``robustness``:
    ``(loaded, scores)`` per chunk of ``files``, in file order; ``scores`` (P(generated)) is
    aligned with ``loaded`` and NaN where a file could not be decoded (``loaded[i].error``
    says why) or scored. In process (decoding ahead, ``prefetch`` if one was started) or, with
    a Dask ``client``, on its workers, which load the model from ``model_dir``."""
    keep = MinSide(getattr(det, "min_size", 1), det.name, mark_grey) if transform is None else _decoded
    pos = transform is not None
    if client is None:
        prefetch = prefetch if prefetch is not None else Prefetcher(files, policy)
        chunks = map_chunks(prefetch, ChunkScorer(device=device, transform=transform, det=det), keep, chunk,
                            positions=pos)
    else:
        from forensics.io.engine import dask_chunks

        if model_dir is None:
            raise ValueError("scoring on a Dask cluster needs the model's folder")
        remote = ChunkScorer(model_folder(model_dir).resolve(), device, transform)
        chunks = dask_chunks(client, files, policy, keep, remote, min(chunk, 64), positions=pos)
    with one_blas_thread():  # as on a Dask worker: a file's score is the same in process and on a cluster
        for loaded, kept, res in chunks:
            s = np.full(len(loaded), np.nan)
            if res is not None:
                at = {id(r): j for j, r in enumerate(loaded)}
                s[[at[id(r)] for r in kept]] = res
            del kept, res
            yield loaded, s


@lru_cache(maxsize=4)
def cached_model(model_dir, stamp):
    """A worker's copy of the model in ``model_dir`` (reloaded when ``stamp``, the files'
    modification times, changes)."""
    return load_model(model_dir)


def score_paths(det, paths, policy=None, transform=None, desc: str = "scoring", progress: bool = True,
                client=None, model_dir=None):
    """Stream the images under ``paths`` through ``det`` (:func:`score_chunks`), optionally through ``transform(images, positions)
    -> images`` first (``positions``: the files' positions, for seeding). With a Dask
    ``client`` the chunks are scored on its workers, which load the model from ``model_dir``.
    Returns ``(files, scores, errors)``: scores are NaN for files that could not be decoded or
    scored; ``errors`` maps such a file to its reason."""
    files = scan_nonempty(paths)
    pol = Policy.parse(policy if policy is not None else getattr(det, "preprocess", "none"))
    scores = np.full(len(files), np.nan)
    errors = {}
    i = 0
    with bar(total=len(files), desc=desc, enabled=progress) as pb:
        for loaded, s in score_chunks(det, files, pol, model_dir, client, transform=transform):
            scores[i:i + len(loaded)] = s
            for r, v in zip(loaded, s):
                if not np.isfinite(v):
                    errors[str(r.path)] = r.error or f"{det.name} cannot score this image (too small, or features undefined)"
            i += len(loaded)
            pb.update(len(loaded))
    return files, scores, errors
