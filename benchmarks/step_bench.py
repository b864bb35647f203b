"""One MSDN training step: zslkit's fused attribute-attention op against the einsum reference.

The step is the whole of training at a batch: forward of both branches, the MSDN losses,
backward and an RMSprop step, at CUB shapes (B=50, C=2048, 14x14 regions, I=312, D=300,
K=200) unless ``--quick``. Variants:

* ``reference``: ``reference_msdn.reference_forward`` (four einsum projections, per-attribute
  features ``(B, I, C)`` materialised in each branch and read by the scores);
* ``paper-code``: ``reference_msdn.paper_code_forward``, the same scores with the work the
  authors' code does besides (per-region score projections, an unused gate over ``(B, I, C)``);
* ``fused``: ``zslkit.ops.normalize_regions`` + two calls of ``zslkit.ops.attribute_attention``;
* ``fused-recompute``: the same with ``recompute=True`` (backward recomputes the projections);
* ``fused-default-rmsprop``: ``fused`` with PyTorch's default RMSprop, to show the optimiser's share;
* ``fused-compiled`` (opt-in with ``--variants``): ``fused`` with the forward under ``torch.compile``.

``--models`` adds TransZero and TransZero++ steps (forward, loss, backward, Adam(lr 1e-4,
weight decay 1e-4), train mode with the CUB config's dropout 0.4, d = 300, FFN 512) at the same
shapes: ``reference`` is ``reference_transzero`` (the released code's style: geometry embedding
per image, attribute self-attention per image), ``zslkit`` the model ``zslkit.interop`` loads
from the same weights. Their scores and losses are checked equal first (dropout off, float32,
also after two Adam steps), then the two are timed side by side and their peak memory measured.

The two baselines get PyTorch's default RMSprop, as the paper's code does (a per-tensor loop
on CPU, multi-tensor kernels on CUDA); zslkit's variants use the multi-tensor (``foreach``) one.

On CPU they run in float32; on CUDA in fp32, TF32 and bf16 (autocast). First every variant's
loss and gradients are checked against the reference in float64, then the variants are timed
side by side (interleaved rounds, median ms per step), then the peak memory of one step of
each is measured (CUDA: ``torch.cuda.max_memory_allocated``; CPU: the profiler's memory
timeline), as the peak above what is allocated before the step. Last, the op's achieved
FLOP/s is compared with the measured rate of a matrix product of the same size. A JSON
record goes to ``--out``.

    python benchmarks/step_bench.py --threads 2            # CPU, CUB shapes
    python benchmarks/step_bench.py --device cuda          # fp32, TF32, bf16 on the GPU
    python benchmarks/step_bench.py --quick                # small shapes, a smoke run
    python benchmarks/step_bench.py --threads 2 --models transzero,transzero_pp --steps 3
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import dataclasses
import functools
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import reference_transzero as tz
import torch
from reference_msdn import (
    CUB,
    MODEL_PARAMETERS,
    QUICK,
    make_optimizer,
    make_parameters,
    make_problem,
    paper_code_forward,
    reference_forward,
    step_loss,
    train_step,
)

import zslkit.ops as ops

PRECISIONS = {"cpu": ("fp32",), "cuda": ("fp32", "tf32", "bf16")}
#: Largest relative error against float64 accepted per precision (loss and every gradient).
TOLERANCE = {"fp32": 1e-4, "tf32": 1e-2, "bf16": 5e-2}


def fused_forward(parameters, features, recompute=False):
    """Attribute scores of both MSDN branches through ``zslkit.ops.attribute_attention``."""
    f = ops.normalize_regions(features)
    v, w1, w2, u1, u2 = (parameters[name] for name in ("V", "W1", "W2", "U1", "U2"))
    a2v = ops.attribute_attention(f, v @ w2, v @ w1, "regions", recompute=recompute)
    v2a = ops.attribute_attention(f, v @ u2, v @ u1.T, "attributes", recompute=recompute)
    return a2v, v2a


@dataclasses.dataclass(frozen=True)
class Variant:
    """A way to run the step: the forward of both branches and the RMSprop implementation."""

    forward: Callable
    foreach: bool | None = None  # None: PyTorch's default RMSprop (what the paper's code gets)
    gates: bool = False  # the forward needs the paper code's W3, W3_1


VARIANTS = {
    "reference": Variant(reference_forward),
    "paper-code": Variant(paper_code_forward, gates=True),
    "fused": Variant(fused_forward, foreach=True),
    "fused-recompute": Variant(functools.partial(fused_forward, recompute=True), foreach=True),
    "fused-default-rmsprop": Variant(fused_forward),
    "fused-compiled": Variant(torch.compile(fused_forward, fullgraph=True), foreach=True),
}
DEFAULT_VARIANTS = ("reference", "paper-code", "fused", "fused-recompute", "fused-default-rmsprop")
BASELINES = ("reference", "paper-code")


@contextlib.contextmanager
def matmul_precision(precision: str):
    """fp32: full float32 products; tf32 (and bf16's float32 parts): TensorFloat-32 allowed."""
    previous = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest" if precision == "fp32" else "high")
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(previous)


def autocast_dtype(precision: str):
    return torch.bfloat16 if precision == "bf16" else None


def synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    return ((actual.double() - expected).abs().max() / expected.abs().max().clamp_min(1e-30)).item()


def loss_and_grads(forward, parameters, problem, precision):
    with torch.autocast(
        problem.features.device.type, dtype=autocast_dtype(precision), enabled=precision == "bf16"
    ):
        loss = step_loss(forward, parameters, problem)
    grads = torch.autograd.grad(loss, [parameters[name] for name in MODEL_PARAMETERS])
    return [loss.detach()] + list(grads)


def check_correctness(shapes, device, precisions, variants, seed):
    """Max relative error of loss and gradients of each variant against the float64 reference."""
    problem64 = make_problem(shapes, seed, device, torch.float64)
    expected = loss_and_grads(
        reference_forward, make_parameters(shapes, seed + 1, device, torch.float64), problem64, "fp32"
    )
    report = {}
    for precision in precisions:
        problem = make_problem(shapes, seed, device)
        for name in variants:
            parameters = make_parameters(shapes, seed + 1, device, gates=VARIANTS[name].gates)
            with matmul_precision(precision):
                actual = loss_and_grads(VARIANTS[name].forward, parameters, problem, precision)
            names = ["loss", *MODEL_PARAMETERS]
            errors = {n: relative_error(a, e) for n, a, e in zip(names, actual, expected)}
            worst = max(errors.values())
            ok = worst <= TOLERANCE[precision]
            report[f"{precision}/{name}"] = {"max_relative_error": worst, "per_tensor": errors, "ok": ok}
            print(f"  check {precision:>4} {name:<21} max rel. error {worst:.2e}  {'ok' if ok else 'FAIL'}")
    return report


def peak_step_memory_mib(device: str, step) -> float:
    """Peak tensor memory one call of ``step`` adds to what is allocated before it.

    CUDA: the caching allocator's peak. CPU: the profiler's memory timeline (every tensor
    allocation and free, by the allocator's hooks), peak minus the level at the start.
    """
    synchronize(device)
    if device == "cuda":
        before = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        step()
        synchronize(device)
        return (torch.cuda.max_memory_allocated() - before) / 2**20
    activities = [torch.profiler.ProfilerActivity.CPU]
    with torch.profiler.profile(
        activities=activities, profile_memory=True, record_shapes=True, with_stack=True
    ) as prof:
        step()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "timeline.json"
        with warnings.catch_warnings():  # deprecated in favour of a CUDA-only API; still the CPU one
            warnings.simplefilter("ignore", FutureWarning)
            prof.export_memory_timeline(str(path), device="cpu")
        _, sizes = json.loads(path.read_text())
    totals = [sum(per_category) for per_category in sizes]
    return (max(totals) - totals[0]) / 2**20


def proc_status_kib(field: str) -> int:
    """A ``/proc/self/status`` field in KiB (``VmRSS``, ``VmHWM``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def peak_rss_added_kib(step) -> int:
    """The peak resident memory one call of ``step`` adds (Linux): freed heap goes back to the system
    (``malloc_trim``), the peak is reset to the current size (``/proc/self/clear_refs``), then ``VmHWM`` after
    the call minus ``VmRSS`` before it. Run the process with ``MALLOC_MMAP_THRESHOLD_=131072`` (see
    :data:`RSS_ENV`) so that large tensors freed inside the step go back to the system too."""
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    Path("/proc/self/clear_refs").write_text("5")
    baseline = proc_status_kib("VmRSS")
    step()
    return proc_status_kib("VmHWM") - baseline


#: the environment of a process that measures :func:`peak_rss_added_kib` (never of one that times)
RSS_ENV = {"MALLOC_MMAP_THRESHOLD_": "131072"}


def interleaved_times(runs, device, steps, warmup) -> dict[str, list[float]]:
    """ms of each of ``steps`` rounds per run; each round calls every run once, back to back, after ``warmup`` rounds."""
    times = {name: [] for name in runs}
    for _ in range(warmup):
        for step in runs.values():
            step()
    for _ in range(steps):
        for name, step in runs.items():
            synchronize(device)
            start = time.perf_counter()
            step()
            synchronize(device)
            times[name].append((time.perf_counter() - start) * 1e3)
    return times


def time_variants(shapes, device, precision, variants, steps, warmup, seed):
    """Median ms per training step and peak step memory of each variant, run side by side."""
    runs = {}
    for name in variants:
        parameters = make_parameters(shapes, seed + 1, device, gates=VARIANTS[name].gates)
        problem = make_problem(shapes, seed, device)
        optimizer = make_optimizer(parameters, VARIANTS[name].foreach)
        runs[name] = functools.partial(
            train_step, VARIANTS[name].forward, parameters, optimizer, problem, autocast_dtype(precision)
        )
    with matmul_precision(precision):
        times = interleaved_times(runs, device, steps, warmup)
        memory = {name: peak_step_memory_mib(device, step) for name, step in runs.items()}
    rows = []
    for name in variants:
        rows.append({
            "device": device, "precision": precision, "variant": name,
            "median_ms": statistics.median(times[name]), "min_ms": min(times[name]), "ms": times[name],
            "peak_step_mib": memory[name],
        })  # fmt: skip
    for baseline in BASELINES:
        base = next((row for row in rows if row["variant"] == baseline), None)
        for row in rows if base else ():
            row[f"time_vs_{baseline}"] = row["median_ms"] / base["median_ms"]
            row[f"min_time_vs_{baseline}"] = row["min_ms"] / base["min_ms"]
            # each round runs every variant back to back: the ratio within a round is the paired estimate
            paired = [ms / base_ms for ms, base_ms in zip(row["ms"], base["ms"])]
            row[f"paired_time_vs_{baseline}"] = statistics.median(paired)
            if base["peak_step_mib"] > 0:
                row[f"memory_vs_{baseline}"] = row["peak_step_mib"] / base["peak_step_mib"]
    return rows


def median_ms(device: str, fn, repeats: int) -> float:
    fn()
    samples = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        fn()
        synchronize(device)
        samples.append((time.perf_counter() - start) * 1e3)
    return statistics.median(samples)


def _op_forward_backward(features, query, value, grad, recompute):
    scores = ops.attribute_attention(features, query, value, "regions", recompute=recompute)
    torch.autograd.grad(scores, (query, value), grad)


def op_throughput(shapes, device, precision, repeats, seed):
    """The op's forward + backward (weight gradients) FLOP/s against a plain matrix product's.

    FLOPs counted: the stacked projection ``2 * 2I * C * B * R`` forward and the same again
    for the weight gradient (one more with ``recompute``); the epilogue's O(B I R) is left out.
    """
    b, c, i = shapes.batch, shapes.channels, shapes.attributes
    r = shapes.height * shapes.width
    generator = torch.Generator().manual_seed(seed)
    features = ops.normalize_regions(torch.rand(b, c, r, generator=generator)).to(device)
    query = torch.randn(i, c, generator=generator).div(c**0.5).to(device).requires_grad_()
    value = torch.randn(i, c, generator=generator).div(c**0.5).to(device).requires_grad_()
    grad = torch.randn(b, i, generator=generator).to(device)
    weight, columns = torch.randn(2 * i, c, device=device), torch.randn(c, b * r, device=device)
    matmul_flops = 2 * (2 * i) * c * b * r
    dtype = autocast_dtype(precision)
    result = {}
    with matmul_precision(precision), torch.autocast(device, dtype=dtype, enabled=dtype is not None):
        result["matmul_gflops"] = matmul_flops / median_ms(device, lambda: weight @ columns, repeats) / 1e6
        for recompute in (False, True):
            call = functools.partial(_op_forward_backward, features, query, value, grad, recompute)
            flops = matmul_flops * (3 if recompute else 2)
            achieved = flops / median_ms(device, call, repeats) / 1e6
            key = "op_recompute" if recompute else "op"
            result[f"{key}_gflops"] = achieved
            result[f"{key}_fraction_of_matmul"] = achieved / result["matmul_gflops"]
    return result


def device_record(device: str) -> dict:
    record = {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
    }
    try:
        import triton

        record["triton"] = triton.__version__
    except ImportError:
        record["triton"] = None
    record["cuda_epilogue"] = "triton" if ops.TRITON_KERNELS else "torch"
    if device == "cuda":
        record["name"] = torch.cuda.get_device_name()
        record["cuda"] = torch.version.cuda
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            query = ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"]
            record["driver"] = subprocess.run(
                query, capture_output=True, text=True, check=True
            ).stdout.strip()
    else:
        models = [
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ]
        record["name"] = models[0] if models else platform.processor()
        record["cores"] = len(models)
    return record


def markdown(rows) -> str:
    """Median and minimum ms per step, time ratios (median of the per-round ratios), peak memory."""
    lines = [
        "| device | precision | variant | median ms/step | min ms/step | x reference | x paper-code "
        "| peak MiB/step | x reference | x paper-code |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    nan = float("nan")
    for row in rows:
        lines.append(
            f"| {row['device']} | {row['precision']} | {row['variant']} | {row['median_ms']:.1f} "
            f"| {row['min_ms']:.1f} | {row.get('paired_time_vs_reference', nan):.2f} "
            f"| {row.get('paired_time_vs_paper-code', nan):.2f} | {row['peak_step_mib']:.1f} "
            f"| {row.get('memory_vs_reference', nan):.2f} | {row.get('memory_vs_paper-code', nan):.2f} |"
        )
    return "\n".join(lines)


def check_transzero(kind, shapes, device, seed, steps=2):
    """Largest relative error of zslkit's scores and loss against the reference (dropout off), before and after Adam steps."""
    problem = make_problem(shapes, seed, device)
    state = tz.make_state(kind, shapes, problem, seed + 1)
    parameters, model = tz.reference_parameters(state, device), tz.zslkit_model(kind, state, 0.0, device)
    opt_ref, opt_ours = tz.reference_optimizer(parameters), tz.zslkit_optimizer(model)
    errors = []
    for _ in range(steps + 1):
        streams = tz.reference_forward(kind, parameters, problem.features, dropout=0.0)
        expected = tz.reference_loss(kind, parameters, streams, problem)
        output = model(problem.features)
        loss = model.loss(output, problem.labels)["total"]
        errors.append(max(relative_error(output.scores.detach(), tz.reference_scores(kind, streams).detach().double()),
                          relative_error(loss.detach(), expected.detach().double())))
        for optimizer, value in ((opt_ref, expected), (opt_ours, loss)):
            optimizer.zero_grad(set_to_none=True)
            value.backward()
            optimizer.step()
    ok = errors[0] < 1e-5 and all(error < 1e-3 for error in errors)  # a NaN fails too
    print(f"  check {kind:<13} rel. error at start {errors[0]:.2e}, after {steps} Adam steps {errors[-1]:.2e}  {'ok' if ok else 'FAIL'}")
    return {"initial_relative_error": errors[0], "relative_errors": errors, "ok": ok}


def time_transzero(kind, shapes, device, steps, warmup, seed):
    """Median ms per step and peak step memory of the reference and of zslkit, run side by side."""
    problem = make_problem(shapes, seed, device)
    state = tz.make_state(kind, shapes, problem, seed + 1)
    parameters, model = tz.reference_parameters(state, device), tz.zslkit_model(kind, state, 0.4, device)
    runs = {
        "reference": functools.partial(tz.reference_step, kind, parameters, tz.reference_optimizer(parameters), problem),
        "zslkit": functools.partial(tz.zslkit_step, model, tz.zslkit_optimizer(model), problem),
    }
    times = interleaved_times(runs, device, steps, warmup)
    memory = {name: peak_step_memory_mib(device, step) for name, step in runs.items()}
    rows = [{"model": kind, "device": device, "variant": name, "median_ms": statistics.median(times[name]),
             "min_ms": min(times[name]), "ms": times[name], "peak_step_mib": memory[name]} for name in runs]
    base = rows[0]
    for row in rows:
        row["paired_time_vs_reference"] = statistics.median(ms / b for ms, b in zip(row["ms"], base["ms"]))
        row["memory_vs_reference"] = row["peak_step_mib"] / base["peak_step_mib"] if base["peak_step_mib"] > 0 else float("nan")
    return rows


def transzero_markdown(rows) -> str:
    lines = ["| model | device | variant | median ms/step | min ms/step | x reference | peak MiB/step | x reference |",
             "|---|---|---|---:|---:|---:|---:|---:|"]
    for row in rows:
        lines.append(f"| {row['model']} | {row['device']} | {row['variant']} | {row['median_ms']:.0f} | {row['min_ms']:.0f} "
                     f"| {row['paired_time_vs_reference']:.2f} | {row['peak_step_mib']:.0f} | {row['memory_vs_reference']:.2f} |")
    return "\n".join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--device", choices=["cpu", "cuda", "all"], default="all", help="all: CPU, and CUDA when present"
    )
    parser.add_argument("--quick", action="store_true", help="small shapes and few steps: a smoke run")
    parser.add_argument(
        "--steps", type=int, help="timed steps per variant (default 5 CPU / 50 CUDA; quick 3)"
    )
    parser.add_argument("--warmup", type=int, help="untimed steps per variant first (default 1 CPU / 5 CUDA)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument(
        "--variants", default=",".join(DEFAULT_VARIANTS), help=f"comma-separated subset of {list(VARIANTS)}"
    )
    parser.add_argument("--models", default="msdn,transzero,transzero_pp",
                        help="comma-separated subset of msdn (the variants above), transzero, transzero_pp")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("bench-out/step_bench.json"), help="JSON record")
    args = parser.parse_args(argv)
    args.variants = args.variants.split(",")
    args.models = args.models.split(",")
    unknown_models = sorted(set(args.models) - {"msdn", *tz.KINDS})
    if unknown_models:
        parser.error(f"--models: expected names from ['msdn', 'transzero', 'transzero_pp'], found {unknown_models}")
    unknown = sorted(set(args.variants) - set(VARIANTS))
    if unknown:
        parser.error(f"--variants: expected names from {list(VARIANTS)}, found {unknown}")
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    with ops.use_backend("fused"):  # the fused variants measure the op whatever ZSLKIT_ATTENTION_BACKEND says
        return run(args)


def run(args) -> dict:
    """Check, time and measure; print the table and write the JSON record."""
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    if "cuda" in devices and not torch.cuda.is_available():
        if args.device == "cuda":
            raise SystemExit("--device cuda: no CUDA device is available")
        devices.remove("cuda")
    shapes = QUICK if args.quick else CUB
    record = {
        "command": shlex.join([Path(sys.executable).name, *sys.argv]),
        "shapes": dataclasses.asdict(shapes),
        "devices": {},
        "correctness": {},
        "results": [],
        "throughput": {},
        "transzero": {"correctness": {}, "results": []},
    }
    for device in devices:
        gpu = device == "cuda"
        steps = args.steps or (3 if args.quick else 50 if gpu else 5)
        warmup = args.warmup if args.warmup is not None else (1 if args.quick or not gpu else 5)
        record["devices"][device] = device_record(device)
        print(f"{device}: {record['devices'][device]['name']}, shapes {dataclasses.asdict(shapes)}")
        if "msdn" in args.models:
            record["correctness"][device] = check_correctness(
                shapes, device, PRECISIONS[device], args.variants, args.seed
            )
        for kind in (k for k in tz.KINDS if k in args.models):
            record["transzero"]["correctness"][f"{device}/{kind}"] = check_transzero(kind, shapes, device, args.seed)
        record["devices"][device]["load_average_before"] = os.getloadavg()
        for precision in PRECISIONS[device] if "msdn" in args.models else ():
            rows = time_variants(shapes, device, precision, args.variants, steps, warmup, args.seed)
            record["results"] += rows
            record["throughput"][f"{device}/{precision}"] = op_throughput(
                shapes, device, precision, steps, args.seed
            )
        for kind in (k for k in tz.KINDS if k in args.models):
            record["transzero"]["results"] += time_transzero(kind, shapes, device, steps, warmup, args.seed)
        record["devices"][device]["load_average_after"] = os.getloadavg()
    if record["results"]:
        print(markdown(record["results"]))
    if record["transzero"]["results"]:
        print(transzero_markdown(record["transzero"]["results"]))
    for key, value in record["throughput"].items():
        print(
            f"{key}: matmul {value['matmul_gflops']:.0f} GFLOP/s; op {value['op_gflops']:.0f} GFLOP/s "
            f"({value['op_fraction_of_matmul']:.0%}), with recompute {value['op_recompute_gflops']:.0f} GFLOP/s "
            f"({value['op_recompute_fraction_of_matmul']:.0%})"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2))
    print(f"wrote {args.out}")
    failed = [key for device in record["correctness"].values() for key, v in device.items() if not v["ok"]]
    failed += [key for key, v in record["transzero"]["correctness"].items() if not v["ok"]]
    if failed:
        raise SystemExit(f"correctness check failed for {failed}")
    return record


if __name__ == "__main__":
    main()
