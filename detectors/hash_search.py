"""Binary codes packed into ``uint64`` words, Hamming distances by popcount, and exact k-nearest-
neighbour search in Hamming space: a linear scan (the oracle) and a multi-index hash (Norouzi,
Punjani & Fleet, "Fast Search in Hamming Space with Multi-Index Hashing", CVPR 2012) that finds
the same neighbours while verifying only a small share of the database.

Packing: bit ``i`` of a code is bit ``i % 64`` of word ``i // 64``; unused high bits are zero, so
the Hamming distance of two codes is the popcount (``np.bitwise_count``) of their words' XOR,
summed over the words. Neighbours are ordered by distance, ties by database position, in every
search here, so the multi-index answer equals the linear scan's exactly.

Multi-index hashing: each word's used bits are cut into substrings of at most ``sub_bits`` bits
(``m`` in all); each substring has a table (counting sort) from its value to the items holding it.
A query probes, for radius ``s = 0, 1, 2, ...`` and substring after substring, every value at
Hamming distance ``s`` of the query's substring, and verifies the new candidates by their full
distance. Once substrings ``0..j`` are probed at radius ``s`` (the others at ``s - 1``), an item not
yet found differs by more than ``s`` bits in the first ``j + 1`` and by more than ``s - 1`` in the
rest, so its distance is at least ``m s + j + 1``: once the ``k``-th best distance found is below
that bound, the ``k`` best are final (ties included). When probes and candidates would cost more
than a share of a scan, the query falls back to the scan.
"""
from __future__ import annotations

from collections.abc import Sequence
from functools import cache

import numpy as np

WORD = 64
#: distances of a block of queries are computed on at most this many (query, item) pairs at once
PAIRS = 1 << 22
#: the cost of probing one bucket, in items scanned (a probe costs a few item checks)
PROBE_COST = 4
#: bytes of "already found" flags (queries x items) one batch of multi-index queries may hold
SEEN = 1 << 25


def n_words(bits: int) -> int:
    return max(1, -(-int(bits) // WORD))


def pack(codes) -> np.ndarray:
    """Bool codes ``(N, L)`` as ``uint64`` words ``(N, ceil(L / 64))`` (see the module docs)."""
    c = np.asarray(codes)
    if c.ndim != 2 or c.shape[1] < 1:
        raise ValueError(f"codes must be a 2-D array of bits, got shape {c.shape}")
    c = c.astype(bool, copy=False)
    w = n_words(c.shape[1])
    if c.shape[1] != w * WORD:
        c = np.concatenate([c, np.zeros((len(c), w * WORD - c.shape[1]), bool)], axis=1)
    b = np.packbits(c, axis=1, bitorder="little")
    return np.ascontiguousarray(b).view("<u8").astype(np.uint64, copy=False).reshape(len(c), w)


def unpack(words, bits: int) -> np.ndarray:
    """The bool codes ``(N, bits)`` of ``uint64`` words (the inverse of :func:`pack`)."""
    w = np.ascontiguousarray(np.asarray(words, dtype=np.uint64).astype("<u8", copy=False))
    return np.unpackbits(w.view(np.uint8).reshape(len(w), -1), axis=1, count=bits, bitorder="little").astype(bool)


def _words(a, name: str) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2 or a.dtype != np.uint64:
        raise ValueError(f"{name} must be uint64 words of shape (N, W), got {a.dtype} {a.shape}")
    return a


def _block_distances(q: np.ndarray, db: np.ndarray) -> np.ndarray:
    """Distances of a block of queries, word by word into the smallest type that holds them."""
    d = np.bitwise_count(q[:, None, 0] ^ db[None, :, 0])  # uint8
    if q.shape[1] > 3:
        d = d.astype(np.uint16)
    for w in range(1, q.shape[1]):
        d += np.bitwise_count(q[:, None, w] ^ db[None, :, w])
    return d


def _pair(q, db) -> tuple[np.ndarray, np.ndarray]:
    q, db = _words(q, "queries"), _words(db, "database")
    if q.shape[1] != db.shape[1]:
        raise ValueError(f"codes of {q.shape[1]} and {db.shape[1]} words cannot be compared")
    return q, db


def distances(q, db) -> np.ndarray:
    """Hamming distances ``(len(q), len(db))`` (``int64``) between packed codes."""
    q, db = _pair(q, db)
    out = np.empty((len(q), len(db)), np.int64)
    step = max(1, PAIRS // max(1, len(db)))
    for i in range(0, len(q), step):
        out[i:i + step] = _block_distances(q[i:i + step], db)
    return out


def _first_k(rows: np.ndarray, keys: np.ndarray, n_rows: int, k: int, out: np.ndarray) -> None:
    """``out[r]`` = the ``k`` smallest ``keys`` of each row ``r`` in ``rows`` (every such row has at
    least ``k``), sorted; rows absent from ``rows`` are left as they are."""
    o = np.lexsort((keys, rows))
    rows, keys = rows[o], keys[o]
    rank = np.arange(len(rows)) - np.searchsorted(rows, np.arange(n_rows))[rows]
    keep = rank < k
    out[rows[keep], rank[keep]] = keys[keep]


def knn_scan(q, db, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact ``k`` nearest database codes of each query by a linear scan: positions and distances,
    each ``(len(q), min(k, len(db)))``, ordered by distance, ties by position (the oracle). Per block
    of queries: the distances, each row's ``k``-th smallest (a partition), then the items within it
    ordered by (distance, position)."""
    q, db = _pair(q, db)
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    n = len(db)
    k = min(k, n)
    keys = np.empty((len(q), k), np.int64)
    step = max(1, PAIRS // max(1, n))
    for i in range(0, len(q), step):
        D = _block_distances(q[i:i + step], db)
        kth = np.partition(D, k - 1, axis=1)[:, k - 1:k] if k < n else D.max(axis=1, keepdims=True)
        rows, cols = np.nonzero(D <= kth)
        _first_k(rows, D[rows, cols].astype(np.int64) * n + cols, len(D), k, keys[i:i + step])
    return keys % n, keys // n


@cache
def _masks(length: int, radius: int) -> np.ndarray:
    """Every ``length``-bit value with exactly ``radius`` bits set (``int64``)."""
    v = np.arange(1 << length, dtype=np.int64)
    return v[np.bitwise_count(v) == radius]


def _ranges(order: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """``order[starts[0]:ends[0]]``, ``order[starts[1]:ends[1]]``, ... concatenated (no loop)."""
    lengths = ends - starts
    total = int(lengths.sum())
    if total == 0:
        return order[:0]
    keep = lengths > 0
    starts, lengths = starts[keep], lengths[keep]
    offsets = np.repeat(starts - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
    return order[offsets + np.arange(total)]


class MultiIndex:
    """Exact Hamming k-NN over packed codes ``words`` (``(N, W)`` ``uint64``) whose word ``w`` uses
    its low ``used_bits[w]`` bits (see the module docs). ``sub_bits``: the longest substring
    (default about ``log2 N``, between 4 and 16)."""

    def __init__(self, words, used_bits: Sequence[int], sub_bits: int | None = None):
        self.words = _words(words, "database")
        used = [int(u) for u in used_bits]
        if len(used) != self.words.shape[1] or any(not 1 <= u <= WORD for u in used):
            raise ValueError(f"used bits {used} do not fit codes of {self.words.shape[1]} words")
        n = len(self.words)
        b = sub_bits or int(np.clip(np.ceil(np.log2(max(n, 2))), 4, 16))
        if not 1 <= b <= 20:
            raise ValueError(f"substrings must have 1 to 20 bits, got {b}")
        self.subs: list[tuple[int, int, int]] = []  # (word, shift, length)
        for w, u in enumerate(used):
            m = -(-u // b)
            base, extra = divmod(u, m)
            shift = 0
            for j in range(m):
                length = base + (j < extra)
                self.subs.append((w, shift, length))
                shift += length
        self.tables = []
        for w, shift, length in self.subs:
            keys = self._keys(self.words[:, w], shift, length)
            starts = np.zeros((1 << length) + 1, np.int64)
            np.cumsum(np.bincount(keys, minlength=1 << length), out=starts[1:])
            self.tables.append((np.argsort(keys, kind="stable"), starts))
        self.n = n
        #: items verified by the last :meth:`knn` call, over queries (its share of the database: cost)
        self.verified = 0

    @staticmethod
    def _keys(col: np.ndarray, shift: int, length: int) -> np.ndarray:
        return ((col >> np.uint64(shift)) & np.uint64((1 << length) - 1)).astype(np.int64)

    def knn(self, q, k: int, max_share: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
        """The same answer as :func:`knn_scan` on the indexed codes, for a batch of queries at once.
        A query whose probes and candidates would cost more than ``max_share`` of a scan is answered
        by the scan instead."""
        q = _words(q, "queries")
        if q.shape[1] != self.words.shape[1]:
            raise ValueError(f"codes of {q.shape[1]} and {self.words.shape[1]} words cannot be compared")
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        k = min(k, self.n)
        idx = np.empty((len(q), k), np.int64)
        dist = np.empty((len(q), k), np.int64)
        self.verified = 0
        step = max(1, SEEN // max(1, self.n))  # queries searched together: their `seen` flags fit SEEN bytes
        for i in range(0, len(q), step):
            self._block(q[i:i + step], k, max_share * self.n, idx[i:i + step], dist[i:i + step])
        return idx, dist

    def _block(self, q: np.ndarray, k: int, budget: float, idx_out: np.ndarray, dist_out: np.ndarray) -> None:
        """Radius ``s`` = 0, 1, ...; within a radius, substring after substring, every query still
        open at once. After substring ``j`` at radius ``s`` an item not found differs by more than
        ``s`` bits in substrings ``0..j`` and by more than ``s - 1`` in the others: its distance is
        at least ``m s + j + 1``, and a query whose ``k``-th best distance is below that is done."""
        n, m, nq = self.n, len(self.subs), len(q)
        never = np.iinfo(np.int64).max
        qkeys = np.stack([self._keys(q[:, w], shift, length) for w, shift, length in self.subs], axis=1)
        seen = np.zeros((nq, n), bool)
        top = np.full((nq, k), never, np.int64)  # best keys distance * n + position so far, sorted
        count = np.zeros(nq, np.int64)
        cost = np.zeros(nq)
        open_ = np.arange(nq)

        def finish(done, scan=False):
            if scan:
                self.verified += n * len(done)
                idx_out[done], dist_out[done] = knn_scan(q[done], self.words, k)
            else:
                idx_out[done], dist_out[done] = top[done] % n, top[done] // n

        for s in range(max(length for _, _, length in self.subs) + 1):
            for j, ((_, _, length), (order, starts)) in enumerate(zip(self.subs, self.tables)):
                if not len(open_):
                    return
                if s > length:  # not reached: this substring's ball held every item at radius `length`
                    finish(open_, scan=True)
                    return
                masks = _masks(length, s)
                keys = (qkeys[open_, j][:, None] ^ masks[None, :]).ravel()
                lo, hi = starts[keys], starts[keys + 1]
                qid = np.repeat(np.repeat(open_, len(masks)), hi - lo)
                ids = _ranges(order, lo, hi)
                new = ~seen[qid, ids]
                pair = np.unique(qid[new] * n + ids[new])  # (query, item) found the first time
                cost[open_] += PROBE_COST * len(masks)
                if len(pair):
                    qid, ids = pair // n, pair % n
                    seen[qid, ids] = True
                    d = np.bitwise_count(self.words[ids] ^ q[qid]).sum(axis=1, dtype=np.int64)
                    hits = np.bincount(qid, minlength=nq)
                    count += hits
                    cost += hits
                    self.verified += len(ids)
                    touched = np.nonzero(hits)[0]
                    # merge the new candidates into each touched query's best k (one sort for all)
                    _first_k(np.concatenate([np.repeat(touched, k), qid]),
                             np.concatenate([top[touched].ravel(), d * n + ids]), nq, k, top)
                kth = top[open_, k - 1]
                done = (count[open_] >= k) & ((kth // n < m * s + j + 1) | (count[open_] == n))
                if done.any():
                    finish(open_[done])
                    open_ = open_[~done]
                over = cost[open_] > budget
                if over.any():
                    finish(open_[over], scan=True)
                    open_ = open_[~over]
        if len(open_):
            finish(open_, scan=True)
