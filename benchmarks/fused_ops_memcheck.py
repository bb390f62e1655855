"""Small correctness cases of the fused ops for ``compute-sanitizer --tool memcheck``
(``benchmarks/fused_ops_gpu.py --memcheck`` runs them)."""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from fused_ops_common import DTYPES, diff_stats, on_route, precision_flags
from helpers.models import trained_like as realistic_model
from resnet_edge.fuse import fuse_model
from resnet_edge.models import get_spec


def _direct_cases(device: torch.device) -> list[tuple[str, Callable[[], tuple[torch.Tensor, torch.Tensor]]]]:
    """Single-op cases the model sweep misses, for the epilogue route: channel counts that force the
    scalar epilogue, and an input whose storage offset breaks 16-byte alignment (which the shared
    code must realign before any kernel sees it)."""
    from resnet_edge import ops

    def basic_identity(channels: int, dtype: torch.dtype, misaligned: bool):
        def case():
            g = torch.Generator().manual_seed(channels)
            n, h, w = 2, 5, 7
            numel = n * channels * h * w
            flat = torch.randn(numel + 1, generator=g).to(device=device, dtype=dtype)
            storage = flat[1:] if misaligned else flat[:numel]
            x = storage.view(n, h, w, channels).permute(0, 3, 1, 2)  # channels_last, offset by one element
            weights = [torch.randn(channels, channels, 3, 3, generator=g).to(device=device, dtype=dtype) * 0.2 for _ in range(2)]
            biases = [torch.randn(channels, generator=g).to(device=device, dtype=dtype) * 0.1 for _ in range(2)]
            out = ops.fused_basic_block(x, weights[0], biases[0], weights[1], biases[1], None, None, 1, True)
            xf = x.float()
            hidden = F.relu(F.conv2d(xf, weights[0].float(), biases[0].float(), padding=1))
            expected = F.relu(F.conv2d(hidden, weights[1].float(), biases[1].float(), padding=1) + xf)
            return out.float(), expected

        return case

    cases = []
    for dtype in (torch.float32, torch.float16):
        for channels in (6, 16):
            for misaligned in (False, True):
                name = f"basic identity C={channels} {str(dtype).split('.')[-1]}{' misaligned' if misaligned else ''}"
                cases.append((name, basic_identity(channels, dtype, misaligned)))
    return cases


MEMCHECK_ARCHS = ("resnet20", "resnet50")


def memcheck(device: torch.device) -> int:
    """Small correctness cases for ``compute-sanitizer --tool memcheck``, beyond tests/ops/test_ops.py's:
    whole fused models (resnet20: basic blocks, option-A zero-pad shortcut; resnet50 at 64x64:
    bottlenecks, projection and identity shortcuts) in FP32 and FP16 on the default CUDA route (the cuDNN
    graph where built), and the direct single-op cases on the epilogue route, whose scalar path they reach.
    Prints one line per case; returns the number of mismatches."""
    failures = 0
    # No cuDNN autotuning: under the sanitizer every algorithm tried costs seconds, and one per shape is enough.
    with torch.inference_mode(), precision_flags(device, benchmark=False):
        for arch in MEMCHECK_ARCHS:
            size = 64 if get_spec(arch).family == "imagenet" else 32
            x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(1)).to(device)
            model = realistic_model(arch)
            expected = model.to(device)(x).float()
            for dtype_name, dtype in DTYPES.items():
                if device.type == "cpu" and dtype == torch.float16:
                    continue  # the CPU kernel is FP32-only
                fused = fuse_model(realistic_model(arch)).to(device=device, dtype=dtype)
                stats = diff_stats(fused(x.to(dtype)).float(), expected)
                ok = stats["finite"] and stats["max_rel"] < (1e-4 if dtype == torch.float32 else 5e-2)
                failures += not ok
                print(f"memcheck case {arch} {dtype_name}: max_rel {stats['max_rel']:.2e} {'ok' if ok else 'MISMATCH'}", flush=True)
        for name, case in _direct_cases(device):
            if device.type == "cpu" and "float16" in name:
                continue
            out, expected = on_route("epilogue", case)()
            stats = diff_stats(out, expected)
            ok = stats["finite"] and stats["max_rel"] < (1e-4 if "float32" in name else 2e-2)
            failures += not ok
            print(f"memcheck case {name}: max_rel {stats['max_rel']:.2e} {'ok' if ok else 'MISMATCH'}", flush=True)
    if device.type == "cuda":
        torch.cuda.synchronize()
    print(f"memcheck cases: {failures} mismatch(es)")
    return failures
