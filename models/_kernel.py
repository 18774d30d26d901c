"""Building and calling the fused CPU kernel of :class:`~bioSNN.models.diehl_cook.FrozenDiehlCook`.

``diehl_cook_kernel.c`` is compiled once per machine with the C compiler the Brian2 engine already needs
(``$CC``, else ``cc``), with the flags Brian2 compiles its C++ with (``-O3 -ffast-math -fno-finite-math-only
-march=native``) plus OpenMP and no contraction into fused multiply-adds (which the tensor kernel does not do),
into ``$XDG_CACHE_HOME/biosnn/kernels`` (the file name hashes source, flags, compiler and CPU, so an edited source
or another machine gets its own build). Concurrent builds are safe (each writes a temporary file and renames it).
:func:`load` returns ``None`` where no compiler works; the tensor kernel is then used.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["load", "Params", "Ens", "Cross", "MAX_ENS", "MAX_CROSS", "SOURCE"]

SOURCE = Path(__file__).with_name("diehl_cook_kernel.c")
FLAGS = [
    "-O3",
    "-ffast-math",
    "-fno-finite-math-only",
    "-march=native",
    "-ffp-contract=off",
    "-fopenmp",
    "-std=c11",
    "-fPIC",
]
# linked in a step of its own, without -ffast-math: linking with it adds crtfastmath.o, whose constructor turns on
# flush-to-zero for the whole process (numpy and torch would then lose their denormals) as soon as the library loads
LINK = ["-shared", "-fopenmp"]

LIBS = ["-lmvec", "-lm"] if platform.system() == "Linux" else ["-lm"]

_I, _D = ctypes.c_int64, ctypes.c_double


MAX_ENS, MAX_CROSS = 4, 12  # as the kernel's #defines


class Ens(ctypes.Structure):
    """The kernel's ``Ens`` struct (one ensemble; same field order)."""

    _fields_ = (
        [(n, _I) for n in ("n_exc", "n_input", "off", "in_off", "w_off", "ref_e", "ref_i", "n_sources")]
        + [("sources", _I * (MAX_CROSS + 1)), ("spike_gap", _D)]
        + [
            (n, _D * 2)
            for n in ("tau", "e_exc", "e_inh", "v_leak", "ge_mean", "gi_mean", "v_reset", "decay_ge", "decay_gi")
        ]
        + [(n, _D) for n in ("v_thresh_i", "w_exc_inh", "w_inh_exc")]
    )


class Cross(ctypes.Structure):
    """The kernel's ``Cross`` struct (one cross-modal projection)."""

    _fields_ = [(n, _I) for n in ("src", "dst", "w_off")]


class Params(ctypes.Structure):
    """The kernel's ``Params`` struct (same field order)."""

    _fields_ = (
        [(n, _I) for n in ("n_streams", "n_ens", "n_cross", "n_total", "steps", "step0")]
        + [(n, _D) for n in ("dt", "t_slot", "t_present")]
        + [(n, _I) for n in ("rec_in_cap", "rec_ex_cap", "n_threads")]
        + [("ens", Ens * MAX_ENS), ("cross", Cross * MAX_CROSS)]
    )


_loaded: dict = {}


def _cpu() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
        return next((ln for ln in text.splitlines() if ln.startswith("model name")), "") + next(
            (ln for ln in text.splitlines() if ln.startswith("flags")), ""
        )
    except OSError:
        return platform.processor()


def _cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "biosnn" / "kernels"


def load():
    """The compiled kernel's ``dc_slot`` function, building it on first use; ``None`` without a working
    compiler."""
    if "fn" in _loaded:
        return _loaded["fn"]
    fn = None
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if cc:
        try:
            version = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=30).stdout
            src = SOURCE.read_bytes()
            key = hashlib.sha256(
                src + " ".join(FLAGS + LINK + LIBS).encode() + version.encode() + _cpu().encode()
            ).hexdigest()[:16]
            lib = _cache() / f"diehl_cook_{key}.so"
            if not lib.exists():
                lib.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(suffix=".so", dir=lib.parent)
                os.close(fd)
                obj = tmp[:-3] + ".o"
                try:
                    subprocess.run(
                        [cc, *FLAGS, "-c", str(SOURCE), "-o", obj], check=True, capture_output=True, timeout=300
                    )
                    subprocess.run([cc, *LINK, obj, "-o", tmp, *LIBS], check=True, capture_output=True, timeout=300)
                    os.replace(tmp, lib)
                finally:
                    for f in (tmp, obj):
                        if os.path.exists(f):
                            os.unlink(f)
            fn = ctypes.CDLL(str(lib)).dc_slot
            fn.restype = ctypes.c_int
            # the parameters, then 26 arrays passed as addresses (see ptr)
            fn.argtypes = [ctypes.POINTER(Params)] + [ctypes.c_void_p] * 26
        except (OSError, subprocess.SubprocessError):
            fn = None
    _loaded["fn"] = fn
    return fn


def ptr(a: np.ndarray | None) -> int | None:
    """The address of a C-contiguous array's data (``None`` → NULL), as the kernel's ``void *`` arguments take it
    (an int: building a ctypes pointer per array and slot cost a fifth of a slot's time at N = 400)."""
    if a is None:
        return None
    if not a.flags.c_contiguous:
        raise ValueError("the kernel needs C-contiguous arrays")
    return a.__array_interface__["data"][0]
