"""Helpers shared by every lab's probes; copied next to ``probes.py`` in the sandbox.

Runs in the sandboxed child, like the probes: it turns what student code returned into plain
NumPy data and loads the parent's weights into student modules with a clear message when the
parameter names or shapes do not follow the stub.
"""

import numpy as np
import torch


def tensor_out(value, what):
    """A torch tensor or NumPy array returned by the student, as a plain ndarray."""
    if isinstance(value, torch.Tensor):
        t = torch.Tensor.detach(value)
        return np.array(torch.Tensor.tolist(t.cpu()), dtype=str(t.dtype).replace("torch.", ""))
    if type(value) is np.ndarray:
        return np.array(value.tolist(), dtype=value.dtype)
    raise TypeError(f"{what} must return a torch.Tensor, got {type(value).__name__}")


def as_tensor(value, what):
    """A returned torch tensor, detached on the CPU (TypeError otherwise)."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{what}: expected a torch.Tensor, got {type(value).__name__}")
    return torch.Tensor.detach(value).cpu()


def number_out(value, what):
    """A returned Python/NumPy number or one-element tensor, as a float."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise TypeError(f"{what}: expected a scalar, got a tensor of shape "
                            f"{tuple(value.shape)}")
        return float(torch.Tensor.item(value))
    if isinstance(value, (float, int, np.floating, np.integer)) and not isinstance(value, bool):
        return float(value)
    raise TypeError(f"{what}: expected a number, got {type(value).__name__}")


def check_names_and_shapes(have, want, what):
    """Raise ValueError naming missing, unexpected and mis-shaped tensors ({name: shape} dicts)."""
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
