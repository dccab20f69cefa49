"""DCSH-style unsupervised cross-modality spectral hashing of images (after Hoang, Do, Nguyen &
Cheung, "Unsupervised Deep Cross-modality Spectral Hashing", IEEE TIP 2020, arXiv 2008.00223).

The two modalities are one image's **pixels** (the image at ``size x size``) and its **Fourier
spectrum** (``log2d``: the centred 2-D log-magnitude spectrum of its grey version, or
``profile``: its azimuthal profile), both from :mod:`forensics.spectral.spectrum`.

Step 1, binary optimisation (reconstructed; the paper's exact objective was not available).
Per modality ``m``: a kNN graph with a heat kernel on standardised features, its normalised
Laplacian ``L_m``, and a continuous embedding ``Y_m`` (``n x bits``, ``Y_m^T Y_m = n I``,
``Y_m ⟂ 1``). One shared code ``B in {-1, +1}^(n x bits)``. Minimise

    sum_m tr(Y_m^T L_m Y_m) + lam * sum_m ||B - Y_m R_m||_F^2,  R_m^T R_m = I,

by alternating: ``R_m`` by orthogonal Procrustes (SVD of ``Y_m^T B``); ``Y_m`` by one step of
the generalised power iteration (polar factor of ``(2I - L_m) Y_m + lam B R_m^T / sqrt(n)``,
centred so it stays orthogonal to the constant vector); ``B`` by the sign of
``sum_m Y_m R_m`` thresholded at each bit's median, so every bit is exactly balanced. ``Y_m``
starts at the Laplacian eigenmap (smallest non-trivial eigenvectors).

Step 2, hash functions: a small CNN on the pixels and an MLP on the spectral features, each
trained with a squared loss between its ``tanh`` output and ``B``; a new image's code in a
modality is the sign of that network's output. With ``modalities=("pixels",)`` the codes are
learned without the spectral graph (the ablation of the evaluation); both networks are still
trained, to those codes.

At most ``max_train`` images (a seeded random sample of those given) train the model: steps 1
and 2 cost grows with the training set (the kNN graphs quadratically, the networks linearly), the
codes of any number of images are then one forward pass each.

Codes for indexes and queries (:meth:`HashModel.codes`) are computed in inference mode, in batches
of exactly :data:`CODE_BATCH` images (the last one padded) on one torch thread, so an image's code
depends on the image alone, not on what it is batched with, on the chunking, or on the machine's
core count (a Dask worker and this process give the same bits); they come packed into ``uint64``
words (:mod:`forensics.detectors.hash_search`).

Model files are code-free: ``hash_model.json`` (config, statistics), ``hash_model.npz`` (arrays,
read with ``allow_pickle=False``) and one ``.safetensors`` file per network.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import numpy as np

from forensics.core.config import Config, Count, NonNegative, Positive, Range, Seed
from forensics.detectors.hash_search import distances, knn_scan, pack, unpack
from forensics.io.files import atomic_write_bytes, read_npz, write_json, write_npz

MODALITIES = ("pixels", "spectrum")
SPECTRUM_FEATURES = ("log2d", "profile")
CODE_MODALITIES = ("pixels", "spectrum", "both")
FORMAT = "forensics-hash-model"
FORMAT_VERSION = 1
#: images per forward pass of :meth:`HashModel.codes` (fixed, so an image's code does not depend on its batch)
CODE_BATCH = 16


@dataclasses.dataclass(frozen=True)
class HashConfig(Config):
    """Settings of a DCSH hash model (see the module docs)."""

    bits: Annotated[int, Range(16, 64)] = 32  # 16, 32 or 64
    seed: Seed = 0
    size: Annotated[int, Range(8)] = 32  # images are brought to size x size by ``policy``
    policy: str | None = None           # preprocessing policy; default resize:SIZE:area
    spectrum: str = "log2d"             # log2d (2-D log magnitude) | profile (azimuthal profile)
    modalities: tuple[str, ...] = MODALITIES  # modalities whose graphs shape the shared codes
    knn: Count = 10                     # neighbours in each modality's graph
    lam: NonNegative = 1.0              # weight of the code-fitting term
    iters: Count = 20                   # alternating updates of (R, Y, B)
    epochs: Count = 60                  # hash-network training epochs
    hidden: Count = 256                 # hidden width of the networks
    lr: Positive = 1e-3
    batch: Count = 128
    weight_decay: NonNegative = 1e-4
    max_train: Count = 4000             # at most this many images (a seeded sample) train the model

    def validate(self) -> None:
        if self.bits not in (16, 32, 64):
            raise ValueError(f"bits must be 16, 32 or 64, got {self.bits}")
        if self.spectrum not in SPECTRUM_FEATURES:
            raise ValueError(f"unknown spectral features {self.spectrum!r}; choose from {', '.join(SPECTRUM_FEATURES)}")
        if not self.modalities or any(m not in MODALITIES for m in self.modalities) \
                or len(set(self.modalities)) != len(self.modalities):
            raise ValueError(f"modalities must be distinct names from {', '.join(MODALITIES)}, got {self.modalities}")
        if self.max_train <= self.bits + 1:
            raise ValueError(f"max_train must be more than bits + 1 = {self.bits + 1}, got {self.max_train}")
        if self.policy is not None:
            from forensics.io.images import Policy

            p = Policy.parse(self.policy)
            if p.mode == "none" or p.size != self.size:
                raise ValueError(f"policy {self.policy!r} must produce {self.size}x{self.size} images")

    @property
    def policy_str(self) -> str:
        return self.policy or f"resize:{self.size}:area"

    @classmethod
    def fast(cls, **kw) -> HashConfig:
        """Small settings for tests and quick looks (few updates and epochs)."""
        return cls(**{"iters": 8, "epochs": 25, "hidden": 128, **kw})


# ------------------------------------------------------------------------------- features
def _check_images(images) -> np.ndarray:
    a = np.asarray(images)
    if a.ndim != 4 or a.shape[-1] != 3 or a.dtype != np.uint8:
        raise ValueError(f"expected uint8 images of shape (N, H, W, 3), got {a.dtype} {a.shape}")
    if len(a) == 0:
        raise ValueError("no images")
    return a


def pixel_input(images: np.ndarray) -> np.ndarray:
    """Pixels as the CNN sees them: ``(N, 3, S, S)`` float32 in [-1, 1]."""
    a = _check_images(images)
    return np.ascontiguousarray(a.transpose(0, 3, 1, 2), dtype=np.float32) / np.float32(127.5) - np.float32(1.0)


def spectral_input(images: np.ndarray, kind: str = "log2d") -> np.ndarray:
    """The spectral modality, ``(N, D)`` float32: the centred 2-D log-magnitude spectrum (dB) of
    the grey image, flattened (``log2d``), or its azimuthal profile (``profile``)."""
    from forensics.spectral import spectrum

    a = _check_images(images)
    if kind == "log2d":
        return spectrum.spectrum(a, "log", eps=1e-3).reshape(len(a), -1).astype(np.float32)
    if kind == "profile":
        return spectrum.azimuthal_profile(a, "log").astype(np.float32)
    raise ValueError(f"unknown spectral features {kind!r}")


def modality_inputs(images: np.ndarray, kind: str) -> dict[str, np.ndarray]:
    return {"pixels": pixel_input(images), "spectrum": spectral_input(images, kind)}


# ---------------------------------------------------------------------- step 1: binary codes
def knn_laplacian(X: np.ndarray, k: int):
    """Normalised Laplacian (sparse) of the symmetrised kNN graph of the rows of ``X`` with heat
    kernel weights ``exp(-d^2 / sigma^2)``, ``sigma^2`` the mean squared neighbour distance."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import laplacian
    from sklearn.neighbors import NearestNeighbors

    n = len(X)
    k = min(k, n - 1)
    if k < 1:
        raise ValueError("a graph needs at least 2 images")
    d, idx = NearestNeighbors(n_neighbors=k + 1).fit(X).kneighbors(X)
    d, idx = d[:, 1:], idx[:, 1:]
    s2 = float(np.mean(d ** 2)) or 1.0
    W = csr_matrix((np.exp(-d.ravel() ** 2 / s2), (np.repeat(np.arange(n), k), idx.ravel())), shape=(n, n))
    W = W.maximum(W.T)
    return laplacian(W, normed=True).tocsr()


def laplacian_eigenmap(L, dim: int, seed: int = 0) -> np.ndarray:
    """The ``dim`` eigenvectors of ``L`` with the smallest eigenvalues after the trivial one,
    ``(n, dim)`` with orthonormal columns."""
    n = L.shape[0]
    if n <= dim + 1:
        raise ValueError(f"need more than {dim + 1} images for {dim} bits, got {n}")
    if n <= 1500:
        _, V = np.linalg.eigh(L.toarray())
        return V[:, 1:dim + 1]
    from scipy.sparse import identity
    from scipy.sparse.linalg import eigsh

    v0 = np.random.default_rng(seed).standard_normal(n)
    w, V = eigsh(2.0 * identity(n, format="csr") - L, k=dim + 1, which="LA", v0=v0)  # largest of 2I - L
    order = np.argsort(-w)
    return V[:, order[1:dim + 1]]


def balanced_sign(Z: np.ndarray) -> np.ndarray:
    """``+1`` for the larger half of each column of ``Z`` and ``-1`` for the rest (ties broken by
    row order), so every bit is on for exactly ``ceil(n / 2)`` rows."""
    n = len(Z)
    order = np.argsort(-Z, axis=0, kind="stable")
    B = -np.ones(Z.shape, dtype=np.float64)
    np.put_along_axis(B, order[:(n + 1) // 2], 1.0, axis=0)
    return B


def procrustes(Y: np.ndarray, B: np.ndarray) -> np.ndarray:
    """The orthogonal ``R`` maximising ``tr(R^T Y^T B)`` (minimising ``||B - Y R||``)."""
    U, _, Vt = np.linalg.svd(Y.T @ B)
    return U @ Vt


def _polar(M: np.ndarray) -> np.ndarray:
    U, _, Vt = np.linalg.svd(M, full_matrices=False)
    return U @ Vt


def joint_codes(features: dict[str, np.ndarray], bits: int, knn: int = 10, lam: float = 1.0,
                iters: int = 20, seed: int = 0) -> tuple[np.ndarray, list[float]]:
    """Step 1: the shared balanced code ``B`` (``n x bits`` in {-1, +1}) of the modalities in
    ``features`` (``name -> (n, d)`` standardised features) and the objective after each update."""
    names = list(features)
    n = len(features[names[0]])
    Ls = {m: knn_laplacian(features[m], knn) for m in names}
    Q = {m: laplacian_eigenmap(Ls[m], bits, seed) for m in names}  # Y_m = sqrt(n) Q_m
    R = {m: np.eye(bits) for m in names}
    B = balanced_sign(sum(Q.values()))
    rn = np.sqrt(n)

    def objective():
        return float(sum(n * np.sum(Q[m] * (Ls[m] @ Q[m])) + lam * np.sum((B - rn * Q[m] @ R[m]) ** 2)
                         for m in names) / n)

    history = [objective()]
    for _ in range(iters):
        for m in names:
            R[m] = procrustes(Q[m], B)
            M = 2.0 * Q[m] - Ls[m] @ Q[m] + lam * (B @ R[m].T) / rn
            Q[m] = _polar(M - M.mean(axis=0))
        B = balanced_sign(sum(Q[m] @ R[m] for m in names))
        history.append(objective())
    return B, history


# --------------------------------------------------------------------- step 2: hash networks
def _nets(config: HashConfig, spec_dim: int):
    """The two hash networks; the CNN's weights in channels-last layout (about twice as fast on CPU),
    set once here: a network used by several threads is never converted while another computes."""
    import torch
    from torch import nn

    s = config.size
    conv = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4 if s >= 16 else 2),
        nn.Flatten(), nn.Linear(32 * (16 if s >= 16 else 4), config.hidden), nn.ReLU(),
        nn.Linear(config.hidden, config.bits))
    mlp = nn.Sequential(
        nn.Linear(spec_dim, config.hidden), nn.ReLU(),
        nn.Linear(config.hidden, config.hidden), nn.ReLU(),
        nn.Linear(config.hidden, config.bits))
    return {"pixels": conv.to(memory_format=torch.channels_last), "spectrum": mlp}


def _train_net(net, X: np.ndarray, B: np.ndarray, config: HashConfig, seed: int, progress: bool, desc: str):
    import torch

    from forensics.core.progress import bar

    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    Xt, Bt = torch.from_numpy(X), torch.from_numpy(B.astype(np.float32))
    fmt = _memory_format(Xt)
    opt = torch.optim.Adam(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    net.train()
    losses = []
    for _ in bar(range(config.epochs), total=config.epochs, desc=desc, enabled=progress):
        perm = torch.randperm(len(Xt), generator=g)
        total = 0.0
        for i in range(0, len(Xt), config.batch):
            ix = perm[i:i + config.batch]
            loss = torch.mean((torch.tanh(net(Xt[ix].contiguous(memory_format=fmt))) - Bt[ix]) ** 2)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(ix)
        losses.append(total / len(Xt))
    net.eval()
    return losses


def _memory_format(X):
    """Channels-last for image batches (the CNN's layout, :func:`_nets`), the default otherwise."""
    import torch

    return torch.channels_last if X.ndim == 4 else torch.contiguous_format


def _forward(net, X: np.ndarray, chunk: int = 1024) -> np.ndarray:
    import torch

    Xt = torch.from_numpy(X)
    fmt = _memory_format(Xt)
    with torch.inference_mode():
        return np.concatenate([net(Xt[i:i + chunk].contiguous(memory_format=fmt)).numpy()
                               for i in range(0, len(X), chunk)])


def _forward_fixed(net, X: np.ndarray, batch: int = CODE_BATCH) -> np.ndarray:
    """``net``'s outputs in batches of exactly ``batch`` rows (the last one padded with zeros), on
    the caller's torch threads: each row's output is then independent of the others."""
    import torch

    n = len(X)
    pad = -n % batch
    if pad:
        X = np.concatenate([X, np.zeros((pad,) + X.shape[1:], X.dtype)])
    Xt = torch.from_numpy(X)
    fmt = _memory_format(Xt)
    with torch.inference_mode():
        out = [net(Xt[i:i + batch].contiguous(memory_format=fmt)).numpy() for i in range(0, len(X), batch)]
    return np.concatenate(out)[:n]


class HashModel:
    """A trained DCSH model: feature statistics, the two hash networks and the training codes.

    Use :meth:`train` to fit, :meth:`encode` for codes (bool arrays, ``True`` = bit set),
    :meth:`save` / :meth:`load` for code-free files."""

    def __init__(self, config: HashConfig, spec_mean: np.ndarray, spec_scale: np.ndarray, nets: dict,
                 train_codes: np.ndarray, info: dict):
        self.config = config
        self.spec_mean = spec_mean
        self.spec_scale = spec_scale
        self.nets = nets
        self.train_codes = train_codes  # step-1 codes B > 0 of the training images
        self.info = info

    # ---------------------------------------------------------------------------- training
    @classmethod
    def train(cls, images: np.ndarray, config: HashConfig | None = None, progress: bool = False) -> HashModel:
        """Fit on ``(N, S, S, 3)`` uint8 images with ``S = config.size`` (unsupervised)."""
        import torch

        config = config or HashConfig()
        images = _check_images(images)
        if images.shape[1:3] != (config.size, config.size):
            raise ValueError(f"images are {images.shape[2]}x{images.shape[1]}, the model expects "
                             f"{config.size}x{config.size}")
        n_given = n = len(images)
        if n <= config.bits + 1:
            raise ValueError(f"{config.bits}-bit codes need more than {config.bits + 1} training images, got {n}")
        if n > config.max_train:
            pick = np.sort(np.random.default_rng(config.seed).choice(n, config.max_train, replace=False))
            images, n = images[pick], config.max_train
        inputs = modality_inputs(images, config.spectrum)
        spec_mean = inputs["spectrum"].mean(axis=0)
        spec_scale = inputs["spectrum"].std(axis=0)
        spec_scale[spec_scale < 1e-6] = 1.0
        spec = (inputs["spectrum"] - spec_mean) / spec_scale
        graph = {"pixels": _standardise(inputs["pixels"].reshape(n, -1)), "spectrum": spec}
        B, history = joint_codes({m: graph[m] for m in config.modalities}, config.bits, config.knn, config.lam,
                                 config.iters, config.seed)
        with _torch_threads():
            torch.manual_seed(config.seed)  # the networks' initial weights
            nets = _nets(config, spec.shape[1])
            losses = {m: _train_net(nets[m], X, B, config, config.seed + i, progress, f"hash net {m}")
                      for i, (m, X) in enumerate((("pixels", inputs["pixels"]), ("spectrum", spec)))}
        info = {"n_train": n, "n_given": n_given, "objective": history, "net_loss": {m: v[-1] for m, v in losses.items()},
                "spectral_dim": int(spec.shape[1])}
        return cls(config, spec_mean.astype(np.float32), spec_scale.astype(np.float32), nets, B > 0, info)

    # ---------------------------------------------------------------------------- encoding
    def _inputs(self, images) -> tuple[np.ndarray, np.ndarray]:
        images = _check_images(images)
        if images.shape[1:3] != (self.config.size, self.config.size):
            raise ValueError(f"images are {images.shape[2]}x{images.shape[1]}, the model expects "
                             f"{self.config.size}x{self.config.size}")
        spec = (spectral_input(images, self.config.spectrum) - self.spec_mean) / self.spec_scale
        return pixel_input(images), spec.astype(np.float32)

    def outputs(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """Real-valued network outputs per modality, ``name -> (N, bits)`` (on the toolkit's threads;
        :meth:`codes` gives codes that do not depend on the batch)."""
        pix, spec = self._inputs(images)
        with _torch_threads():
            return {"pixels": _forward(self.nets["pixels"], pix), "spectrum": _forward(self.nets["spectrum"], spec)}

    def codes(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """Packed codes per modality, ``name -> (N, 1)`` ``uint64`` words (:func:`hash_search.pack`):
        inference in batches of :data:`CODE_BATCH` on the caller's torch threads (run it on one, as
        :func:`one_torch_thread` does, for codes that are the same on every machine)."""
        pix, spec = self._inputs(images)
        return {"pixels": pack(_forward_fixed(self.nets["pixels"], pix) > 0),
                "spectrum": pack(_forward_fixed(self.nets["spectrum"], spec) > 0)}

    def encode(self, images: np.ndarray, modality: str = "both") -> np.ndarray:
        """Binary codes, bool ``(N, bits)``; ``both`` concatenates pixel and spectrum codes
        (``(N, 2 * bits)``, whose Hamming distance is the sum of the two). The bits of :meth:`codes`
        (those of a hash index)."""
        if modality not in CODE_MODALITIES:
            raise ValueError(f"unknown code modality {modality!r}; choose from {', '.join(CODE_MODALITIES)}")
        with one_torch_thread():
            c = self.codes(images)
        bits = {m: unpack(c[m], self.config.bits) for m in MODALITIES}
        return np.concatenate([bits["pixels"], bits["spectrum"]], axis=1) if modality == "both" else bits[modality]

    # ------------------------------------------------------------------------- persistence
    def save(self, folder) -> Path:
        from safetensors.torch import save as st_save

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for m, net in self.nets.items():
            atomic_write_bytes(folder / f"{m}_net.safetensors",
                               st_save({k: v.detach().contiguous() for k, v in net.state_dict().items()}))
        write_npz(folder / "hash_model.npz", spec_mean=self.spec_mean, spec_scale=self.spec_scale,
                  train_codes=np.packbits(self.train_codes, axis=1))
        write_json(folder / "hash_model.json", {"format": FORMAT, "format_version": FORMAT_VERSION,
                                                "config": self.config.to_dict(), "info": self.info})
        return folder

    @classmethod
    def load(cls, folder) -> HashModel:
        """Read a folder written by :meth:`save` (raises ``ValueError``/``FileNotFoundError``)."""
        from safetensors import SafetensorError
        from safetensors.torch import load as st_load

        folder = Path(folder)
        mj = folder / "hash_model.json"
        if not mj.is_file():
            raise FileNotFoundError(f"{folder}: not a hash model (no hash_model.json)")
        from forensics.core.checks import read_json_object

        meta = read_json_object(mj, "hash model description")
        if meta.get("format") != FORMAT:
            raise ValueError(f"{mj}: not a forensics hash model")
        if meta.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{mj}: hash model format version {meta.get('format_version')} is not supported")
        config = HashConfig.from_dict(meta["config"])
        try:
            arrays = read_npz(folder / "hash_model.npz", finite=True)
            nets = _nets(config, int(meta["info"]["spectral_dim"]))
            for m, net in nets.items():
                net.load_state_dict(st_load((folder / f"{m}_net.safetensors").read_bytes()))
                net.eval()
            codes = np.unpackbits(arrays["train_codes"], axis=1, count=config.bits).astype(bool)
        except (OSError, KeyError, RuntimeError, ValueError, SafetensorError) as e:
            raise ValueError(f"{folder}: damaged or incompatible hash model ({type(e).__name__}: {e})") from None
        return cls(config, arrays["spec_mean"], arrays["spec_scale"], nets, codes, meta["info"])


def _standardise(X: np.ndarray) -> np.ndarray:
    s = X.std(axis=0)
    s[s < 1e-6] = 1.0
    return (X - X.mean(axis=0)) / s


class _torch_threads:
    """Torch on ``n`` threads (default the toolkit's thread budget,
    :func:`forensics.spectral.spectrum.threads`) inside the block."""

    def __init__(self, n: int | None = None):
        self.n = n

    def __enter__(self):
        import torch

        from forensics.spectral.spectrum import threads

        self.old = torch.get_num_threads()
        torch.set_num_threads(max(1, self.n or threads()))

    def __exit__(self, *exc):
        import torch

        torch.set_num_threads(self.old)
        return False


def one_torch_thread():
    """Torch on one thread inside the block (set it before starting threads that run
    :meth:`HashModel.codes`: threads take the setting when they first run torch)."""
    return _torch_threads(1)


def codes_of(outputs: dict[str, np.ndarray], modality: str) -> np.ndarray:
    """Signs of network outputs as bool codes for ``pixels``, ``spectrum`` or ``both``."""
    if modality == "both":
        return np.concatenate([outputs["pixels"] > 0, outputs["spectrum"] > 0], axis=1)
    if modality not in MODALITIES:
        raise ValueError(f"unknown code modality {modality!r}; choose from {', '.join(CODE_MODALITIES)}")
    return outputs[modality] > 0


# ----------------------------------------------------------------------- distances, ranking
def _packed_pair(a, b) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"codes of shapes {a.shape} and {b.shape} cannot be compared")
    return pack(a), pack(b)


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamming distances ``(len(a), len(b))`` between bool code matrices (popcount of packed words)."""
    return distances(*_packed_pair(a, b))


def nearest(query: np.ndarray, database: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and Hamming distances of the ``k`` nearest database codes of each query (ties
    by database order), each ``(len(query), min(k, len(database)))``."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    return knn_scan(*_packed_pair(query, database), k)


def hamming_map(query: np.ndarray, database: np.ndarray, q_labels, db_labels, seed: int = 0) -> float:
    """Mean average precision of Hamming ranking over the whole database (mAP@all): a database
    item is relevant to a query when their labels are equal. Ties in distance are broken by a
    seeded random order, so a database sorted by label gains nothing from tied codes. Queries
    without any relevant item are skipped."""
    q_labels, db_labels = np.asarray(q_labels), np.asarray(db_labels)
    perm = np.random.default_rng(seed).permutation(len(database))
    D = hamming(query, np.asarray(database)[perm])
    order = np.argsort(D, axis=1, kind="stable")
    rel = (db_labels[perm][order] == q_labels[:, None])
    hits = rel.sum(axis=1)
    prec = np.cumsum(rel, axis=1) / np.arange(1, rel.shape[1] + 1)
    ap = (prec * rel).sum(axis=1) / np.maximum(hits, 1)
    return float(ap[hits > 0].mean())


def lsh_codes(train: np.ndarray, X: np.ndarray, bits: int, seed: int = 0) -> np.ndarray:
    """Random-projection LSH (sign of Gaussian projections of features centred and scaled by
    the training set's statistics): the baseline codes, bool ``(N, bits)``."""
    train = np.asarray(train, dtype=np.float64).reshape(len(train), -1)
    X = np.asarray(X, dtype=np.float64).reshape(len(X), -1)
    mu, sd = train.mean(axis=0), train.std(axis=0)
    sd[sd < 1e-6] = 1.0
    W = np.random.default_rng(seed).standard_normal((train.shape[1], bits))
    return ((X - mu) / sd) @ W > 0
