"""resnet-edge-infer's bad-input table (issue 13): every case's arguments, exit code, the one stderr
line, the state of its outputs and what the user should do. tests/cpp/test_cpp_bad_inputs.py runs it;
scripts/errors_doc.py renders docs/errors.md from it."""

from __future__ import annotations

import signal

from helpers.battery import ABSENT, UNCHANGED, Case

PROGRAM = "resnet-edge-infer"


def _case(id: str, argv: tuple[str, ...], exit_code: int, stderr: str, outputs: tuple, todo: str, **options) -> Case:
    """A battery Case, written in the order the table reads best: outputs before what to do."""
    return Case(id, argv, exit_code, stderr, todo, outputs=outputs, subprocess=True, **options)


REBUILD = "Rebuild the bundle with `resnet-edge compile --out DIR`, or copy it again from where it was built."
LEAVES = ("A bundle carries every file it names, by a relative name inside it (no `..`, absolute path, `\\`, `:` or NUL): "
          "put the file back in the bundle and name it there, or rebuild the bundle. Python refuses it too.")
BAD = ("{bundle}", "--source", "{image}", "--save-input", "{out}")

BATTERY: list[Case] = [
    _case("missing-bundle", ("{tmp}/nope", "--source", "{image}", "--save-input", "{out}"), 2, r"bundle .*nope does not exist",
         (("{out}", ABSENT),), "Pass the directory `resnet-edge compile --out DIR` wrote."),
    _case("no-manifest", BAD, 2, r"is not a bundle \(no manifest\.json\)", (("{out}", ABSENT),),
         "Pass the bundle directory itself (the one holding manifest.json), not a parent or a file in it.",
         setup="remove-manifest"),
    _case("truncated-manifest", BAD, 1, r"manifest\.json is not valid JSON", (("{out}", ABSENT),), REBUILD,
         setup="truncate-manifest"),
    _case("oversized-manifest", BAD, 1, r"manifest\.json is \d+ bytes, more than a manifest may have", (("{out}", ABSENT),),
         REBUILD, setup="oversize-manifest"),
    _case("manifest-not-an-object", BAD, 1, r"manifest\.json is not a manifest object", (("{out}", ABSENT),), REBUILD,
         setup="manifest-array"),
    _case("manifest-newer-schema", BAD, 1, r"schema_version 99, newer than", (("{out}", ABSENT),),
         "Upgrade resnet-edge (and rebuild the C++ app) to a version that reads this manifest.",
         setup="schema-99"),
    _case("tampered-artifact", BAD, 1, r"model\.pt does not match its sha256", (("{out}", ABSENT),),
         "The model file changed after the bundle was built (corrupt copy or edited): " + REBUILD,
         setup="append-to-model"),
    _case("tampered-labels", BAD, 1, r"labels\.txt does not match its sha256", (("{out}", ABSENT),), REBUILD,
         setup="append-to-labels"),
    _case("missing-artifact", BAD, 1, r"is incomplete: model\.pt is missing", (("{out}", ABSENT),), REBUILD,
         setup="remove-model"),
    _case("artifact-outside", BAD, 1, r'file name "\.\./outside/model\.pt" leaves the bundle directory', (("{out}", ABSENT),),
         LEAVES, setup="model-named-outside"),
    _case("artifact-absolute", BAD, 1, r'file name "/\S*/model\.pt" leaves the bundle directory', (("{out}", ABSENT),),
         LEAVES, setup="model-named-absolute"),
    _case("artifact-name-nul", BAD, 1, r'file name "model\.pt\\u0000\.txt" leaves the bundle directory', (("{out}", ABSENT),),
         LEAVES, setup="model-name-nul"),
    _case("artifact-symlink-outside", BAD, 1,
         r"model\.pt is a symlink that leaves the bundle \(to \S*/outside/model\.pt\); a copied bundle would break: copy the file in",
         (("{out}", ABSENT),), "Replace the symlink with the file itself (`cp --remove-destination TARGET LINK`): a copied bundle "
         "must carry its files. Python refuses it too.", setup="model-symlinked-outside"),
    _case("unsupported-backend", BAD, 1, r"onnxruntime bundle, which the C\+\+ Classifier does not run", (("{out}", ABSENT),),
         "Compile a bundle for the C++ app: `resnet-edge compile --backend torchscript` (or openvino, tensorrt where built in).",
         setup="backend-onnxruntime"),
    _case("truncated-image", ("{bundle}", "--source", "{tmp}/cut.png", "--save-input", "{out}"), 1,
         r"cannot read image .*cut\.png \(not an image OpenCV can decode, corrupt", (("{out}", ABSENT),),
         "The image file is cut short or damaged: copy it again or drop it from the source.", setup="truncated-png"),
    _case("truncated-jpeg", ("{bundle}", "--source", "{tmp}/cut.jpg", "--save-input", "{out}"), 1,
         r"cannot read image .*cut\.jpg \(not an image OpenCV can decode, corrupt", (("{out}", ABSENT),),
         "The JPEG is cut short (libjpeg would fill the rest with grey; it is refused, as in Python): copy it again.",
         setup="truncated-jpeg"),
    _case("decompression-bomb", ("{bundle}", "--source", "{tmp}/bomb.png", "--save-input", "{out}"), 1,
         r"cannot read image .*bomb\.png \(.*over 178956970 pixels", (("{out}", ABSENT),),
         "Images over 178956970 pixels (Pillow's limit) are not decoded: downscale the image first, or raise "
         "OPENCV_IO_MAX_IMAGE_PIXELS if you trust the file.", setup="bomb-png"),
    _case("not-an-image", ("{bundle}", "--source", "{tmp}/notes.png", "--save-input", "{out}"), 1,
         r"cannot read image .*notes\.png", (("{out}", ABSENT),),
         "The file has an image extension but is not an image: pass image files only.",
         setup="text-as-png"),
    _case("not-a-video", ("{bundle}", "--source", "{tmp}/notes.txt", "--save-input", "{out}"), 1,
         r"cannot open video .*notes\.txt \(not a video", (("{out}", ABSENT),),
         "A file without an image extension is read as a video: pass an image, a directory of images, or a video.",
         setup="text-file"),
    _case("empty-directory", ("{bundle}", "--source", "{tmp}/empty", "--save-input", "{out}"), 2, r"no images in directory",
         (("{out}", ABSENT),), "The directory holds no image files (png, jpg, bmp, webp, tiff...): point --source at one that does.",
         setup="empty-dir"),
    _case("missing-source", ("{bundle}", "--source", "{tmp}/gone.png"), 2, r"source .*gone\.png does not exist", (),
         "Check the --source path."),
    _case("unreadable-image", ("{bundle}", "--source", "{tmp}/secret.png"), 1,
         r"cannot read image .*secret\.png \(Permission denied\)", (),
         "The app's user may not read the image: fix its permissions (chmod a+r) or run as its owner.",
         setup="unreadable-png", unprivileged=True),
    _case("top-k-zero", ("{bundle}", "--source", "{image}", "--top-k", "0"), 2, r"--top-k takes an integer >= 1, got '0'", (),
         "Give --top-k a positive integer."),
    _case("batch-negative", ("{bundle}", "--source", "{image}", "--batch", "-1"), 2, r"--batch takes an integer >= 1, got '-1'",
         {}, "Give --batch a positive integer."),
    _case("unknown-option", ("{bundle}", "--source", "{image}", "--frobnicate"), 2, r"unknown option --frobnicate",
         {}, "See `resnet-edge-infer --help` for the options."),
    _case("logits-without-json", ("{bundle}", "--source", "{image}", "--logits"), 2, r"--logits goes with --json", (),
         "Add --json (the logits are a JSON field)."),
    _case("unknown-device", ("{bundle}", "--source", "{image}", "--device", "tpu"), 2, r"unknown device 'tpu'", (),
         "Use --device auto, cpu, cuda or cuda:N."),
    _case("save-input-unwritable", ("{bundle}", "--source", "{image}", "--save-input", "{out}"), 2,
         r"--save-input .*out is not writable \(.*Permission denied\)", (("{out}", UNCHANGED),),
         "Pick a --save-input directory the app's user may write, or fix its permissions.",
         setup="readonly-out", unprivileged=True),
    _case("save-input-under-a-file", ("{bundle}", "--source", "{image}", "--save-input", "{tmp}/file/out"), 2,
         r"--save-input .* is not a directory that can be created", (("{tmp}/file", UNCHANGED),),
         "--save-input names a path inside a file: pick a directory path.", setup="plain-file"),
    _case("sigint-during-directory", ("{bundle}", "--source", "{tmp}/images", "--repeat", "100000", "--save-input", "{out}"),
         128 + signal.SIGINT, r"stopped by SIGINT after \d+ frame\(s\)", (),
         "Nothing to fix: the run stopped after the frame in progress; every reported frame's --save-input file is complete.",
         setup="images-dir", signal=signal.SIGINT),
    _case("sigterm-during-directory", ("{bundle}", "--source", "{tmp}/images", "--repeat", "100000", "--save-input", "{out}"),
         128 + signal.SIGTERM, r"stopped by SIGTERM after \d+ frame\(s\)", (),
         "Nothing to fix: as SIGINT (SIGHUP too).", setup="images-dir", signal=signal.SIGTERM),
]
