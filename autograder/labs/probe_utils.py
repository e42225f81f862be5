"""Helpers shared by every lab's probes; copied next to ``probes.py`` in the sandbox.

Runs in the sandboxed child, like the probes. Probes hand back *raw outputs only*: what the
student's objects returned (base-class arrays, shapes, dtypes, numbers, names), never a verdict
such as "equal", "finite" or "raised the right error": the parent computes every comparison.
Everything here reads tensors through the base class with ``__torch_function__`` disabled, so a
Tensor subclass (or a monkeypatched method) cannot change what is reported.
"""

import numpy as np
import torch

_TensorBase = getattr(torch._C, "TensorBase", None) or torch._C._TensorBase
_detach = _TensorBase.detach
_to = _TensorBase.to
_contiguous = _TensorBase.contiguous
_numpy = _TensorBase.numpy
_requires_grad = _TensorBase.requires_grad.__get__
_grad = _TensorBase.grad.__get__
_is_tensor = torch.is_tensor
_NO_NUMPY = {torch.bfloat16: torch.float32, torch.complex32: torch.complex64}


def _plain(t):
    """A plain CPU copy of tensor ``t`` as an ndarray (subclass and overrides bypassed)."""
    with torch._C.DisableTorchFunction():
        base = _detach(t)
        dtype = _NO_NUMPY.get(base.dtype, base.dtype)
        base = _contiguous(_to(base, device="cpu", dtype=dtype, copy=True))
        return np.array(_numpy(base), copy=True)


def tensor_out(value, what):
    """A torch tensor or NumPy array returned by the student, as a plain ndarray."""
    if isinstance(value, torch.Tensor):
        return _plain(value)
    if isinstance(value, np.ndarray):
        arr = np.array(np.ndarray.view(value, np.ndarray), copy=True, subok=False)
        if arr.dtype == object:
            raise TypeError(f"{what} returned an array of Python objects, not numbers")
        return arr
    raise TypeError(f"{what} must return a torch.Tensor, got {type(value).__name__}")


def as_tensor(value, what):
    """A returned torch tensor as a plain, detached CPU tensor (TypeError otherwise)."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{what}: expected a torch.Tensor, got {type(value).__name__}")
    return torch.from_numpy(_plain(value))


def number_out(value, what):
    """A returned Python/NumPy number or one-element tensor, as a float."""
    if isinstance(value, torch.Tensor):
        arr = _plain(value)
        if arr.size != 1:
            raise TypeError(f"{what}: expected a scalar, got a tensor of shape {arr.shape}")
        return float(arr.reshape(()).item())
    if isinstance(value, (float, int, np.floating, np.integer)) and not isinstance(value, bool):
        return float(value.item() if isinstance(value, np.generic) else
                     float.__float__(value) if isinstance(value, float) else
                     int.__int__(value))
    raise TypeError(f"{what}: expected a number, got {type(value).__name__}")


def requires_grad(t):
    """The tensor's real ``requires_grad`` flag (a subclass property cannot lie about it)."""
    with torch._C.DisableTorchFunction():
        return bool(_requires_grad(t))


def grad_out(t):
    """The ``.grad`` of a leaf tensor as an ndarray, or None when it has none."""
    with torch._C.DisableTorchFunction():
        g = _grad(t)
    return None if g is None else _plain(g)


def shape_of(t):
    """Shape of a tensor/array as a list of ints (read through the base class)."""
    if isinstance(t, torch.Tensor):
        with torch._C.DisableTorchFunction():
            return [int(s) for s in _TensorBase.size(t)]
    if isinstance(t, np.ndarray):
        return [int(s) for s in np.ndarray.view(t, np.ndarray).shape]
    raise TypeError(f"expected a tensor, got {type(t).__name__}")


def dtype_of(t):
    """``"float32"``, ``"int64"``...: the dtype of a tensor/array (read through the base class)."""
    if isinstance(t, torch.Tensor):
        with torch._C.DisableTorchFunction():
            return str(_TensorBase.dtype.__get__(t)).replace("torch.", "")
    if isinstance(t, np.ndarray):
        return str(np.ndarray.view(t, np.ndarray).dtype)
    raise TypeError(f"expected a tensor, got {type(t).__name__}")


def nn_class(module):
    """Name of the nearest torch.nn class of ``module`` (a subclass of nn.ReLU reports "ReLU",
    the student's own nn.Module subclass "Module")."""
    for cls in type(module).__mro__:
        if str(getattr(cls, "__module__", "")).startswith("torch.nn"):
            return str(cls.__name__)
    return None


def parameters_out(module):
    """``{name: shape}`` of a module's parameters (raw facts; the parent compares them)."""
    return {str(n): [int(s) for s in p.shape] for n, p in module.named_parameters()}


def check_names_and_shapes(have, want, what):
    """Raise ValueError naming missing, unexpected and mis-shaped tensors ({name: shape} dicts).

    Used only to load the parent's weights into a student module with a clear message (the
    parent still compares every output)."""
    if have == want:
        return
    missing = sorted(set(want) - set(have))
    extra = sorted(set(have) - set(want))
    wrong = sorted(k for k in set(have) & set(want) if have[k] != want[k])
    parts = []
    if missing:
        parts.append(f"missing parameters {missing[:6]}")
    if extra:
        parts.append(f"unexpected parameters {extra[:6]}")
    if wrong:
        parts.append("wrong shapes " + ", ".join(f"{k} {have[k]} (expected {want[k]})"
                                                  for k in wrong[:4]))
    raise ValueError(f"{what}: the parameters do not follow the stub's specification: "
                     f"{'; '.join(parts)}")
