# setup.py — builds fakequant._C: torch-free kernels with per-file ISA flags, torch bindings, CUDA when available.
import glob
import os
import re
import shutil
from concurrent.futures import ThreadPoolExecutor

import torch
from setuptools import find_packages, setup
from torch.utils.cpp_extension import BuildExtension, CppExtension, CUDAExtension

ROOT = os.path.dirname(os.path.abspath(__file__))
BASE = ["-O3", "-std=c++17", "-fPIC", "-ffp-contract=off", "-fno-math-errno", "-Wall"]
AVX2 = ["-mavx2", "-mfma", "-mf16c"]
AVX512 = AVX2 + ["-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mavx512vnni"]
# Kernel files name their ISA by suffix; the flags go to that translation unit only, so nothing
# depends on the build machine's CPU and cpuid picks the kernel at run time.
ISA_FLAGS = {"_avx2": AVX2, "_avx512": AVX512, "_vnni": AVX512, "_amx": AVX512 + ["-mamx-tile", "-mamx-int8"]}


def isa_flags(path):
    stem = os.path.splitext(os.path.basename(path))[0]
    for suffix, flags in ISA_FLAGS.items():
        if stem.endswith(suffix):
            return flags
    return []


def want_cuda():
    if os.environ.get("FAKEQUANT_NO_CUDA") == "1" or torch.version.cuda is None:
        return False
    return shutil.which("nvcc") is not None or os.environ.get("CUDA_HOME") is not None


def cuda_arch_flags():
    """nvcc -gencode flags for FAKEQUANT_CUDA_ARCH ("90"), else TORCH_CUDA_ARCH_LIST ("8.0;9.0+PTX"), else
    the visible GPUs; empty (torch's default) when none is named or seen. Compute capability 9.0 is built
    as sm_90a, the target with wgmma, and FAKEQUANT_SM90A tells the host code that kernel is there."""
    named = os.environ.get("FAKEQUANT_CUDA_ARCH") or os.environ.get("TORCH_CUDA_ARCH_LIST", "")
    archs = [a for a in re.split(r"[ ;,]+", named) if a]
    if not archs:
        archs = sorted({"%d%d" % torch.cuda.get_device_capability(i) for i in range(torch.cuda.device_count())})
    flags = []
    for arch in archs:
        m = re.fullmatch(r"(\d+)\.?(\d)(a?)(\+PTX)?", arch)
        if m is None:
            return []  # a named architecture ("Hopper"): torch's own flags
        sm = m.group(1) + m.group(2) + ("a" if m.group(1) + m.group(2) == "90" else m.group(3))
        flags.append(f"-gencode=arch=compute_{sm},code=sm_{sm}")
        if m.group(4):
            flags.append(f"-gencode=arch=compute_{sm},code=compute_{sm}")
    return flags + (["-DFAKEQUANT_SM90A"] if any("sm_90a" in f for f in flags) else [])


class Build(BuildExtension):
    """Compiles csrc/cpu/*.cpp (torch-free) with their own flags, then the torch bindings."""

    def build_extensions(self):
        kernels = sorted(glob.glob("csrc/cpu/*.cpp"))
        out_dir = os.path.join(self.build_temp, "kernels")

        def compile_one(src):
            return self.compiler.compile([src], output_dir=out_dir, include_dirs=["csrc"],
                                         extra_postargs=BASE + isa_flags(src))[0]

        with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
            objects = list(pool.map(compile_one, kernels))
        for ext in self.extensions:
            ext.extra_objects = objects + list(ext.extra_objects or [])
        super().build_extensions()


def extension():
    sources = sorted(glob.glob("csrc/*.cpp"))
    cxx = ["-O3", "-fopenmp", "-ffp-contract=off"]  # -fopenmp: at::parallel_for threads
    kwargs = dict(include_dirs=[os.path.join(ROOT, "csrc")], extra_link_args=["-fopenmp"])
    if want_cuda():
        # -fmad=false: no FMA contraction, so device results equal the CPU kernels bit for bit.
        nvcc = ["-O3", "-std=c++17", "--expt-relaxed-constexpr", "-fmad=false"] + cuda_arch_flags()
        sources += sorted(glob.glob("csrc/cuda/*.cu")) + sorted(glob.glob("csrc/cuda/*.cpp"))
        return CUDAExtension("fakequant._C", sources, define_macros=[("FAKEQUANT_WITH_CUDA", "1")],
                             extra_compile_args={"cxx": cxx, "nvcc": nvcc}, **kwargs)
    return CppExtension("fakequant._C", sources, extra_compile_args={"cxx": cxx}, **kwargs)


setup(
    name="fakequant",
    version="0.1.0",
    description="Fast fake-quantization kernels and an eager QAT workflow for PyTorch",
    packages=find_packages(include=["fakequant", "fakequant.*"]),
    ext_modules=[extension()],
    cmdclass={"build_ext": Build.with_options(use_ninja=True)},
    python_requires=">=3.9",
)
