"""The Triton epilogue kernels, without a GPU.

* Under Triton's interpreter (``TRITON_INTERPRET=1``, which must be set before ``import
  triton``, hence a subprocess) the kernels run on CPU tensors and must equal the PyTorch
  epilogue, with small tiles so that every loop runs several chunks and every mask matters.
* Compiled ahead of time for an H100 (``sm_90``) they must get through Triton's whole
  pipeline to a cubin, which catches what the interpreter lets pass.

Run directly (``python test_triton_kernels.py interpret|compile``) this file does the check
in the current process.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="triton is not installed")


def _run_here(mode: str, tmp_path: Path, interpret: bool) -> None:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    env["TRITON_CACHE_DIR"] = str(tmp_path / "triton-cache")
    env.pop("TRITON_INTERPRET", None)
    if interpret:
        env["TRITON_INTERPRET"] = "1"
    result = subprocess.run(
        [sys.executable, __file__, mode], env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{mode} ok" in result.stdout


def test_kernels_match_torch_under_the_interpreter(tmp_path):
    _run_here("interpret", tmp_path, interpret=True)


def test_kernels_compile_for_sm90(tmp_path):
    _run_here("compile", tmp_path, interpret=False)


def check_interpreted() -> None:
    import torch

    from zslkit.ops import triton_kernels
    from zslkit.ops.attribute_attention import attention_epilogue, attention_epilogue_backward

    generator = torch.Generator().manual_seed(0)
    cases = [(torch.float32, (2, 5, 7)), (torch.float32, (1, 1, 1)), (torch.float32, (3, 6, 1))]
    cases += [(torch.float32, (2, 1, 9)), (torch.float64, (2, 5, 7))]  # (B, I, R)
    for dtype, (batch, attributes, regions) in cases:
        tolerance = 1e-12 if dtype == torch.float64 else 1e-5
        projections = 3 * torch.randn(batch, 2 * attributes, regions, generator=generator, dtype=dtype)
        grad_scores = torch.randn(batch, attributes, generator=generator, dtype=dtype)
        grad_maps = torch.randn(batch, attributes, regions, generator=generator, dtype=dtype)
        for dim in (1, 2):
            tiles = {"block_own": 2, "block_loop": 4}
            expected = attention_epilogue(projections, dim)
            actual = triton_kernels.epilogue_forward(projections, dim, **tiles)
            for maybe_grad_maps in (grad_maps, None):
                expected += (attention_epilogue_backward(projections, grad_scores, maybe_grad_maps, dim),)
                actual += (
                    triton_kernels.epilogue_backward(projections, grad_scores, maybe_grad_maps, dim, **tiles),
                )
            for a, b in zip(actual, expected):
                assert (a.dtype, a.shape, a.stride()) == (b.dtype, b.shape, b.stride())  # as the fake ops say
                torch.testing.assert_close(a, b, rtol=tolerance, atol=tolerance)
    # default tiles and a half-precision input: float32 arithmetic, bfloat16 storage
    projections = torch.randn(2, 2 * 40, 150, generator=generator).to(torch.bfloat16)
    for dim in (1, 2):
        for a, b in zip(
            triton_kernels.epilogue_forward(projections, dim), attention_epilogue(projections, dim)
        ):
            assert a.dtype == torch.bfloat16
            torch.testing.assert_close(a.float(), b.float(), rtol=1e-2, atol=1e-2)
    # registration needs no device: afterwards the dispatcher has CUDA kernels for both ops
    triton_kernels.register_cuda_kernels()
    for name in ("zslkit::attention_epilogue", "zslkit::attention_epilogue_backward"):
        assert torch._C._dispatch_has_kernel_for_dispatch_key(name, "CUDA"), name
    print("interpret ok")


def check_compiled() -> None:
    import triton
    import triton.language as tl
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from zslkit.ops import triton_kernels

    scalars = ["n_own", "n_loop", "stride_own", "stride_loop", "n_attr", "slab"]
    # forward: each tiling (own attributes / own regions) once, in float32 and in bfloat16
    for dtype, partial, own_attributes in (("fp32", "fp32", True), ("bf16", "fp32", False)):
        signature = {"proj_ptr": f"*{dtype}", "scores_ptr": f"*{dtype if own_attributes else partial}"}
        signature |= {"maps_ptr": f"*{dtype}"} | dict.fromkeys(scalars, "i32")
        constants = {
            "OWN_ATTRIBUTES": own_attributes,
            "COMPUTE": tl.float32,
            "BLOCK_OWN": 32,
            "BLOCK_LOOP": 128,
        }
        _compile(triton_kernels._epilogue_forward_kernel, signature, constants, triton, ASTSource, GPUTarget)
    # backward: with the map gradient in float32, without it in float64 arithmetic
    for dtype, compute, has_grad_maps in (("fp32", tl.float32, True), ("fp64", tl.float64, False)):
        signature = {
            name: f"*{dtype}" for name in ("proj_ptr", "grad_scores_ptr", "grad_maps_ptr", "out_ptr")
        }
        output_strides = ["out_stride_b", "out_own", "out_loop", "out_values"]
        signature |= dict.fromkeys(scalars + ["attr_own", "attr_loop", *output_strides], "i32")
        constants = {"HAS_GRAD_MAPS": has_grad_maps, "COMPUTE": compute, "BLOCK_OWN": 32, "BLOCK_LOOP": 128}
        _compile(triton_kernels._epilogue_backward_kernel, signature, constants, triton, ASTSource, GPUTarget)
    print("compile ok")


def _compile(kernel, signature, constants, triton, ASTSource, GPUTarget) -> None:
    signature |= dict.fromkeys(constants, "constexpr")
    compiled = triton.compile(
        ASTSource(fn=kernel, signature=signature, constexprs=constants), target=GPUTarget("cuda", 90, 32)
    )
    assert compiled.asm["cubin"], kernel


if __name__ == "__main__":
    {"interpret": check_interpreted, "compile": check_compiled}[sys.argv[1]]()
