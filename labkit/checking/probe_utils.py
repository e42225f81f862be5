"""Generic probes (``call``, ``module``) and the helpers every lab's own probes use.

Runs where the student's code runs: the autograder's jailed child (imported before any student
code) or the notebook's kernel for a self-check. Probes hand back *raw outputs only*: what the
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


# ----------------------------------------------------------------------------- generic probes

MAX_ITEMS = 64  # entries of a returned list/dict that are reported


def flatten(value, key, out, depth=0):
    """Raw facts of a returned value under ``key``: tensors and arrays as arrays, numbers,
    strings, the type and length of containers (items under ``key.i`` / ``key.name``) and
    the structure of an ``nn.Module`` (``key.params``, ``key.modules``)."""
    if isinstance(value, (torch.Tensor, np.ndarray)):
        out[key] = tensor_out(value, key)
        out[f"{key}.kind"] = "tensor" if isinstance(value, torch.Tensor) else "ndarray"
        if isinstance(value, torch.Tensor):
            out[f"{key}.requires_grad"] = requires_grad(value)
    elif isinstance(value, bool) or value is None or isinstance(value, str):
        out[key] = value if not isinstance(value, str) else value[:200]
    elif isinstance(value, (int, float, np.integer, np.floating)):
        out[key] = number_out(value, key)
        out[f"{key}.type"] = "int" if isinstance(value, (int, np.integer)) else "float"
    elif isinstance(value, torch.nn.Module):
        out[f"{key}.type"] = nn_class(value) or "Module"
        out[f"{key}.params"] = parameters_out(value)
        out[f"{key}.modules"] = [nn_class(m) for m in value.modules()]
    elif isinstance(value, (tuple, list)) and depth < 4:
        out[f"{key}.type"] = type(value).__name__ if type(value) in (tuple, list) else "sequence"
        out[f"{key}.len"] = len(value)
        for i, item in enumerate(list(value)[:MAX_ITEMS]):
            flatten(item, f"{key}.{i}", out, depth + 1)
    elif isinstance(value, dict) and depth < 4:
        out[f"{key}.type"] = "dict"
        out[f"{key}.keys"] = sorted(str(k) for k in value)[:MAX_ITEMS]
        for k in sorted(value, key=str)[:MAX_ITEMS]:
            flatten(value[k], f"{key}.{k}", out, depth + 1)
    else:
        out[f"{key}.type"] = str(type(value).__name__)[:100]
    return out


def _arguments(spec, inputs, grads):
    """Probe parameters back to call arguments: arrays as tensors (``grad``: requiring grad)."""
    if isinstance(spec, dict) and "__array__" in spec:
        t = torch.from_numpy(np.array(inputs[spec["__array__"]], copy=True))
        if spec.get("grad"):
            t.requires_grad_(True)
            grads[spec["__array__"]] = t
        return t
    if isinstance(spec, dict):
        return {k: _arguments(v, inputs, grads) for k, v in spec.items()}
    if isinstance(spec, list):
        return [_arguments(v, inputs, grads) for v in spec]
    return spec


def _backward(output, seed=0):
    """Back-propagate a scalar output, or ``sum(w * output)`` (fixed random ``w``) of a tensor
    output, through the base class (a subclass cannot intercept it)."""
    if not isinstance(output, torch.Tensor) or not requires_grad(output):
        return
    with torch._C.DisableTorchFunction():
        out = output.float()
        if out.numel() == 1:
            out.reshape(()).backward()
            return
        w = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed))
        (out * w).sum().backward()


def call(ns, inputs, fn, args=(), kwargs=None, after=False):
    """``ns[fn](*args, **kwargs)``; its result under ``out``; the gradient of every input
    marked ``grad`` under ``grad.<name>``; with ``after``, the arguments as they are after the
    call under ``after.<i>`` / ``after.<name>`` (in-place changes show)."""
    grads = {}
    args = _arguments(list(args), inputs, grads)
    kwargs = _arguments(dict(kwargs or {}), inputs, grads)
    result = ns[fn](*args, **kwargs)
    out = flatten(result, "out", {})
    if after:
        flatten(args, "after", out)
        for name, value in kwargs.items():
            flatten(value, f"after.{name}", out)
    if grads:
        _backward(result)
        for name, t in grads.items():
            g = grad_out(t)
            if g is not None:
                out[f"grad.{name}"] = g
    return out


def module(ns, inputs, cls, config, args=(), seed=0, train=True, backward=True):
    """Build ``ns[cls](**config)`` with seed ``seed``; report its structure (``model.*``); with
    inputs, its outputs in train mode (``train``, gradients: ``without_grad``) and in eval mode
    (``eval``)."""
    torch.manual_seed(seed)
    model = ns[cls](**config)
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"{cls}(...) must be an nn.Module, got {type(model).__name__}")
    out = flatten(model, "model", {})
    args = _arguments(list(args), inputs, {})
    if not args:
        return out
    if train:
        model.train()
        torch.manual_seed(seed)
        result = model(*args)
        flatten(result, "train", out)
        if backward:
            first = result if isinstance(result, torch.Tensor) else None
            _backward(first, seed)
            out["without_grad"] = [str(n) for n, p in model.named_parameters()
                                   if requires_grad(p) and grad_out(p) is None]
    model.eval()
    with torch.no_grad():
        flatten(model(*args), "eval", out)
    return out


def draw(name, t, seed=0):
    """The fixed value of tensor ``t`` called ``name`` (the stub's names are the specification,
    so two implementations with the same names compute the same function): N(0, 1/fan_in) weight
    matrices, N(0, 0.5^2) other matrices (tokens, embeddings), 1 + N(0, 0.1^2) norm scales,
    N(0, 0.1^2) biases and running means, U(0.5, 1.5) running variances; integers unchanged."""
    import zlib

    if not t.is_floating_point():
        return t
    rng, leaf = np.random.default_rng(zlib.crc32(name.encode()) + seed), name.rsplit(".", 1)[-1]
    if leaf == "running_var":
        return torch.from_numpy(rng.uniform(0.5, 1.5, tuple(t.shape))).to(t.dtype)
    scale = (t[0].numel() ** -0.5 if name.endswith("weight") else 0.5) if t.ndim > 1 else 0.1
    z = rng.normal(0, scale, tuple(t.shape))
    return torch.from_numpy(z + (leaf == "weight" and t.ndim == 1)).to(t.dtype)


def fixed_weights(model, seed=0):
    """Every parameter and BatchNorm running statistic of ``model`` set to :func:`draw` of its
    name (other buffers, e.g. a fixed positional encoding, stay as the student built them)."""
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"expected an nn.Module, got {type(model).__name__}")
    params = {n for n, _ in model.named_parameters()}
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if name in params or name.rsplit(".", 1)[-1] in ("running_mean", "running_var"):
                t.copy_(draw(name, t, seed))
    return model


def loaded(ns, inputs, cls, config, args=(), methods=("forward",), attrs=(), grads=()):
    """``ns[cls](**config)`` with :func:`fixed_weights`, in eval mode: ``params``, ``attr.<path>``
    and each method's output on ``args``; with ``grads``, the first output of ``forward`` in
    train mode (``train``) and those parameters' gradients (``grad.<name>``)."""
    from functools import reduce

    torch.manual_seed(0)
    model = ns[cls](**config)
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"{cls}(...) must be an nn.Module, got {type(model).__name__}")
    model, args = fixed_weights(model).eval(), _arguments(list(args), inputs, {})
    out = {"params": parameters_out(model)}
    for path in attrs:
        flatten(reduce(lambda o, a: getattr(o, a, None), path.split("."), model), f"attr.{path}",
                out)
    with torch.no_grad():
        for m in methods:
            flatten((model if m == "forward" else getattr(model, m))(*args), m, out)
    if grads:
        x = model.train()(*args)[0]
        flatten(x, "train", out)
        _backward(x)
        out.update({f"grad.{n}": g for n, p in model.named_parameters()
                    if n in grads and (g := grad_out(p)) is not None})
    return out
