"""Choosing a Brian2 backend per network, visibly, in a ``with`` block.

Brian2 keeps the active device in process-wide state. :func:`backend` confines it: inside the block the named
device is active, on leaving it Brian2 is back on the runtime device with a fresh standalone device, so one
process can build several networks on different backends one after another (sweeps, tests).

Backends
--------
``numpy``, ``cython``
    Runtime code generation (Python drives the loop; per-step overhead).
``cpp_standalone``
    One C++ program per network: generated and compiled once, then run as often as needed with new
    initial values (Brian2's ``run_args``), without recompiling.
``cuda_standalone``
    The same through brian2cuda (``pip install 'bioSNN[cuda]'``). Without a GPU the project can still be
    generated and compiled (``gpu=False``: no GPU detection, compute capability given explicitly).
"""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

__all__ = ["Backend", "BackendName", "backend", "BACKENDS", "compile_cuda_project"]

BackendName = Literal["numpy", "cython", "cpp_standalone", "cuda_standalone"]
BACKENDS = get_args(BackendName)
# added to Brian2's gcc flags by Backend(vectorize=True): see Backend
VECTOR_FLAGS = ["-D__FAST_MATH__", "--param=vect-max-version-for-alias-checks=100"]


@dataclass(frozen=True)
class Backend:
    """A Brian2 backend choice.

    Attributes
    ----------
    name
        One of :data:`BACKENDS`.
    directory
        Project folder of a standalone backend (generated code, binary, results).
    threads
        OpenMP threads of ``cpp_standalone`` (0 = off; on a 2-core CPU 1 thread ran 2-4x faster than 2 OpenMP
        threads for the Diehl&Cook network).
    cuda_compute_capability
        Target GPU architecture for ``cuda_standalone`` when no GPU is detected (9.0 = H100/H200).
    gpu
        Whether a GPU is present (``cuda_standalone`` detects it; False: compile only, never run).
    vectorize
        Let the compiler run the neuron updates on several neurons at once: state updates written without a
        branch per neuron (:func:`bioSNN.brian.neurons.branch_free`) and, on ``cpp_standalone``, glibc's
        vector ``exp``/``log`` enabled (declared only under ``__FAST_MATH__``, which Brian2's
        ``-fno-finite-math-only`` switches off; inf and NaN keep working) and GCC allowed enough run-time alias
        checks for loops over many arrays. Changes results only in the last bits (the vector ``exp`` is within
        4 ulp of the scalar one); False gives Brian2's own code.
    profile
        Standalone backends: time every code object (Brian2's profiling; read with
        :meth:`~bioSNN.brian.network.EnsembleNetwork.profiling_info`). Costs a clock read per object and step.
    """

    name: BackendName = "cython"
    directory: str | None = None
    threads: int = 0
    cuda_compute_capability: float = 9.0
    gpu: bool = True
    vectorize: bool = True
    profile: bool = False

    def __post_init__(self):
        if self.name not in BACKENDS:
            raise ValueError(f"unknown Brian2 backend {self.name!r}; choose one of {BACKENDS}")
        if self.name.endswith("standalone") and not self.directory:
            raise ValueError(f"backend {self.name!r} needs a project directory")

    @classmethod
    def for_run(cls, name: str, folder: str | os.PathLike, **kwargs) -> Backend:
        """Backend ``name`` for a network trained in ``folder``: a standalone project goes to
        ``folder/brian_project``."""
        return cls(
            name, directory=str(Path(folder) / "brian_project") if name.endswith("standalone") else None, **kwargs
        )

    @property
    def standalone(self) -> bool:
        return self.name.endswith("standalone")


def _cython_cache() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return str(Path(base) / "biosnn" / "cython")


@contextlib.contextmanager
def backend(b: Backend) -> Iterator[Backend]:
    """Activate backend ``b`` for the objects created inside the block; restore runtime mode afterwards."""
    import brian2
    from brian2 import prefs, set_device

    if b.standalone:
        # Brian2 names an object uniquely among the living ones: a finished network still waiting for the garbage
        # collector would rename this one's code (exc_stateupdater_codeobject_1 ...) and miss the compile cache
        gc.collect()
    saved_target = prefs.codegen.target
    saved_flags = list(prefs.codegen.cpp.extra_compile_args_gcc)
    saved_dt = brian2.defaultclock.dt_  # set by networks built for cuda_standalone (see bioSNN.brian.builder)
    try:
        if b.name in ("numpy", "cython"):
            prefs.codegen.target = b.name
            if b.name == "cython":
                prefs.codegen.runtime.cython.cache_dir = _cython_cache()
            set_device("runtime")
        elif b.name == "cpp_standalone":
            set_device("cpp_standalone", directory=b.directory, build_on_run=False, profile=b.profile)
            prefs.devices.cpp_standalone.openmp_threads = b.threads
            if b.vectorize:
                prefs.codegen.cpp.extra_compile_args_gcc = saved_flags + VECTOR_FLAGS
        else:
            try:
                import brian2cuda  # noqa: F401  (registers the cuda_standalone device)
            except ImportError as e:
                raise ImportError("cuda_standalone needs brian2cuda: pip install 'bioSNN[cuda]'") from e
            if not b.gpu:
                prefs.devices.cuda_standalone.cuda_backend.detect_gpus = False
                prefs.devices.cuda_standalone.cuda_backend.gpu_id = 0
                prefs.devices.cuda_standalone.cuda_backend.compute_capability = b.cuda_compute_capability
            set_device("cuda_standalone", directory=b.directory, build_on_run=False, profile=b.profile)
        yield b
    finally:
        if b.standalone:
            brian2.device.reinit()
            brian2.device.activate()
            set_device("runtime")
        prefs.codegen.target = saved_target
        prefs.codegen.cpp.extra_compile_args_gcc = saved_flags
        brian2.defaultclock.dt_ = saved_dt


def compile_cuda_project(
    directory: str | os.PathLike, cuda_path: str | None = None, jobs: int = 2, timeout: float = 3600
) -> float:
    """Compile a brian2cuda project generated with ``compile=False``; returns the seconds ``make`` took.

    brian2cuda 1.0a7 writes ``-std=c++11`` into its makefile, but the Thrust/CUB headers of CUDA >= 12 need
    C++17, and CUDA 13 no longer ships cuRAND in the toolkit. The makefile is patched to C++17 and pointed at
    the cuRAND of the ``nvidia-curand`` wheel when the toolkit lacks it.
    """
    import re
    import subprocess
    import sys
    import time

    directory = Path(directory)
    makefile = directory / "makefile"
    text = makefile.read_text()
    if "# patched by bioSNN" in text:  # already patched: just (re)run make
        text = None
    else:
        text = "# patched by bioSNN\n" + text.replace("-std=c++11", "-std=c++17")
    cuda = Path(cuda_path or os.environ.get("CUDA_PATH", "/usr/local/cuda"))
    if text is not None and not (cuda / "include" / "curand.h").exists():
        site = Path(sys.prefix) / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
        found = sorted(site.glob("nvidia/*/include/curand.h")) + sorted(site.glob("nvidia/curand/include/curand.h"))
        if not found:
            raise FileNotFoundError(
                f"cuRAND headers are neither in {cuda}/include nor in an nvidia-curand wheel; pip install nvidia-curand"
            )
        inc = found[0].parent
        lib = inc.parent / "lib"
        if not (lib / "libcurand.so").exists():  # wheels ship only the versioned name; -lcurand needs the plain one
            versioned = sorted(lib.glob("libcurand.so.*"))
            if not versioned:
                raise FileNotFoundError(f"no libcurand.so* in {lib}")
            link_dir = directory / "_curand"
            link_dir.mkdir(exist_ok=True)
            link = link_dir / "libcurand.so"
            if not link.exists():
                link.symlink_to(versioned[0])
            lib_flags = f"-L{link_dir} -Xlinker -rpath={lib}"
        else:
            lib_flags = f"-L{lib} -Xlinker -rpath={lib}"
        text = re.sub(r"^NVCCFLAGS = ", f"NVCCFLAGS = -I{inc} ", text, count=1, flags=re.M)
        text = re.sub(r"^LFLAGS = ", f"LFLAGS = {lib_flags} ", text, count=1, flags=re.M)
    if text is not None:
        makefile.write_text(text)
    t0 = time.perf_counter()
    out = subprocess.run(["make", f"-j{jobs}"], cwd=directory, capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(
            f"compiling the CUDA project in {directory} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
        )
    return time.perf_counter() - t0
