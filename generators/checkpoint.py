"""Checkpoints as safetensors files: loading one never executes code.

Any nest of dicts, lists, tuples, tensors and JSON scalars (model and optimiser state
dicts, RNG states, step counters) is split into a flat ``{name: tensor}`` map, which
safetensors stores, and a JSON skeleton (kept in the file's metadata) that says where
each tensor goes back.
"""
from __future__ import annotations

import contextlib
import json
from pathlib import Path

import torch

from forensics.core.errors import UserError, one_line
from forensics.io.files import atomic_write_bytes


def _split(obj, tensors: dict, path: str):
    if isinstance(obj, torch.Tensor):
        tensors[path] = obj.detach().cpu().contiguous().clone()
        return {"__t": path}
    if isinstance(obj, dict):
        return {"__d": [[type(k).__name__, k, _split(v, tensors, f"{path}/{k}")] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        return {"__l" if isinstance(obj, list) else "__u": [_split(v, tensors, f"{path}/{i}") for i, v in enumerate(obj)]}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot store {type(obj).__name__} at {path} in a checkpoint")


def _join(node, tensors: dict):
    if isinstance(node, dict):
        if "__t" in node:
            return tensors[node["__t"]]
        if "__d" in node:
            keys = {"int": int, "str": str}
            return {keys[t](k): _join(v, tensors) for t, k, v in node["__d"]}
        if "__l" in node:
            return [_join(v, tensors) for v in node["__l"]]
        if "__u" in node:
            return tuple(_join(v, tensors) for v in node["__u"])
    return node


def save_checkpoint(path, state: dict) -> Path:
    """Write ``state`` atomically as one safetensors file."""
    from safetensors.torch import save

    tensors: dict = {}
    skeleton = _split(state, tensors, "")
    return atomic_write_bytes(path, save(tensors, metadata={"forensics": json.dumps(skeleton)}))


def load_checkpoint(path) -> dict:
    """Read a file written by :func:`save_checkpoint` (tensors on the CPU)."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: checkpoint not found")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        return _join(json.loads(meta["forensics"]), tensors)
    except UserError:
        raise
    except Exception as e:
        raise UserError(f"{path}: not a readable forensics checkpoint ({type(e).__name__}: {e})")


@contextlib.contextmanager
def restoring(path, what: str = "checkpoint"):
    """Around code that puts a loaded checkpoint (or a run's log) back into a run: a part
    of the wrong type, shape or name (a damaged file, or one that does not belong to the
    run's config.json) gives one line naming the file, not a traceback."""
    try:
        yield
    except (UserError, torch.cuda.OutOfMemoryError):  # out of memory is not a damaged file
        raise
    except (KeyError, TypeError, AttributeError, IndexError, ValueError, RuntimeError, UnicodeDecodeError) as e:
        reason = one_line(str(e).splitlines()[0] if str(e) else "")
        fit = ", or one that does not match config.json" if what == "checkpoint" else ""
        raise UserError(f"{path}: damaged {what}{fit} ({type(e).__name__}: {reason})") from None
