"""A bundle whose model file changes between the hash check and the load (issue 13, time of check
to time of use): libresnet_edge reads every artifact once, hashes those bytes and loads the model
from them, so what runs is what was verified.

The swap is made deterministic with an LD_PRELOAD shim: the moment the app closes its first handle
on model.pt, the shim renames another valid TorchScript model (different weights) over it. A
reader that opened the file a second time after the check (as the app did before) would load the
other model and report its logits; the app must report the verified model's logits, and the next
start must refuse the changed bundle.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
from PIL import Image

from helpers.cpp_bundles import TORCHSCRIPT_FP32, compile_bundle

REPO = Path(__file__).resolve().parents[2]
INFER = REPO / "build" / "cpp" / "resnet-edge-infer"

pytestmark = pytest.mark.timeout(1800)

SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int done = 0;

/* Whether fd is an open handle on $SWAP_TARGET (before the first swap). */
static int is_target(int fd) {
  const char* target = getenv("SWAP_TARGET");
  char link[64], path[PATH_MAX];
  if (done || target == NULL || fd < 0) return 0;
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, path, sizeof path - 1);
  if (n <= 0) return 0;
  path[n] = 0;
  return strcmp(path, target) == 0;
}

static void swap_now(void) {
  done = 1;
  if (rename(getenv("SWAP_WITH"), getenv("SWAP_TARGET")) == 0) {
    FILE* marker = fopen(getenv("SWAP_MARKER"), "w");
    if (marker != NULL) fclose(marker);
  }
}

int close(int fd) {
  static int (*real)(int) = NULL;
  if (real == NULL) real = (int (*)(int))dlsym(RTLD_NEXT, "close");
  int hit = is_target(fd);
  int result = real(fd);
  if (hit) swap_now();
  return result;
}

int fclose(FILE* file) {
  static int (*real)(FILE*) = NULL;
  if (real == NULL) real = (int (*)(FILE*))dlsym(RTLD_NEXT, "fclose");
  int hit = is_target(fileno(file));
  int result = real(file);
  if (hit) swap_now();
  return result;
}
"""


def _run(*args, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([str(INFER), *map(str, args)], capture_output=True, text=True, timeout=300, cwd=REPO, env=env)


@pytest.fixture(scope="module")
def swap_bundle(cpp_build, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("swap") / "r20"
    return compile_bundle(out, *TORCHSCRIPT_FP32, "--arch", "resnet20", "--random-weights", "--no-fused")


def test_model_swapped_after_the_check_does_not_run(swap_bundle, tmp_path):
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("needs a C compiler for the LD_PRELOAD shim")
    (tmp_path / "shim.c").write_text(SHIM)
    shim = tmp_path / "libswap.so"
    subprocess.run([cc, "-shared", "-fPIC", "-O1", str(tmp_path / "shim.c"), "-o", str(shim), "-ldl"], check=True)

    bundle = tmp_path / "bundle"
    shutil.copytree(swap_bundle, bundle)
    other = tmp_path / "other.pt"  # the same network with other weights: loads and runs fine
    module = torch.jit.load(str(bundle / "model.pt"))
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.mul_(-0.5)
    torch.jit.save(module, str(other))
    image = tmp_path / "image.png"
    Image.effect_noise((48, 40), 50).convert("RGB").save(image)

    expected = _run(bundle, "--source", image, "--json", "--logits")
    assert expected.returncode == 0, expected.stderr
    marker = tmp_path / "swapped"
    env = {"LD_PRELOAD": str(shim), "SWAP_TARGET": str((bundle / "model.pt").resolve()), "SWAP_WITH": str(other),
           "SWAP_MARKER": str(marker), "PATH": "/usr/bin:/bin"}
    swapped = _run(bundle, "--source", image, "--json", "--logits", env=env)
    assert swapped.returncode == 0, swapped.stderr
    assert marker.exists(), "the shim never saw model.pt closed: the test did not swap anything"
    assert json.loads(swapped.stdout)["logits"] == json.loads(expected.stdout)["logits"]

    # The swap is real: the next start refuses the bundle.
    refused = _run(bundle, "--source", image)
    assert refused.returncode == 1 and "model.pt does not match its sha256" in refused.stderr
