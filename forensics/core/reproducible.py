"""Scores that depend on the image alone: not on its batch, the BLAS's threads or the machine's cores.

BLAS (OpenBLAS, MKL) blocks a matrix product by the matrices' sizes and by its thread count, and
the blocking changes the order of the sums: the same feature row comes out one ulp apart when
it is scored alone, beside 127 other images, on 2 BLAS threads or on a Dask worker's 1
(measured with numpy 2.4's OpenBLAS: in process and on a local cluster the default model's
scores differed in the 16th digit, and a calibrated threshold with them). Two rules keep a
file's score the same wherever and beside whatever it is scored:

- a product over the rows of *several* images goes through :func:`matmul`, NumPy's own
  ``einsum`` loop, which sums each output element over the inner axis in one fixed order
  whatever the batch, the memory layout or the threads (5-20x slower than BLAS, small beside
  the spectra that feed it);
- scoring runs BLAS on one thread (:func:`one_blas_thread`), as a Dask worker does, so the
  products of *one* image's rows, which keep BLAS's speed, are summed in one order too.

Training keeps BLAS as it is: no score is promised there beyond the seed.
"""
from __future__ import annotations

from contextlib import contextmanager
from functools import lru_cache

import numpy as np


def matmul(a, b) -> np.ndarray:
    """``a @ b`` for a 2-D ``a`` and a 1-D or 2-D ``b``, each row of the result summed alone, in
    one fixed order (see the module's note)."""
    a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
    if a.ndim != 2 or b.ndim not in (1, 2):
        raise ValueError(f"matmul: expected a 2-D and a 1-D or 2-D array, got {a.shape} and {b.shape}")
    return np.einsum("ij,j->i" if b.ndim == 1 else "ij,jk->ik", a, b)


@contextmanager
def one_blas_thread():
    """BLAS on one thread in this process while the block runs (the scoring threads already fill
    the cores), restored after. The setting is process-wide: enter it from the thread that drives
    the scoring, not from the scoring threads themselves."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, user_api="blas"):
        yield


@lru_cache(maxsize=1)
def pin_blas_to_one_thread() -> None:
    """BLAS on one thread for the rest of this process's life: a scoring worker's setting (a
    Dask nanny sets ``OPENBLAS_NUM_THREADS=1`` already; a worker started otherwise may not).
    Done once per process: later calls, one per chunk, return at once."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, user_api="blas")
