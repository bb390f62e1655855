"""The command line's bad-input table (issue 13): every case's command, exit code, the one stderr line,
the state of its outputs and what the user should do. tests/cli/test_bad_inputs.py runs it;
scripts/errors_doc.py renders docs/errors.md from it."""

from __future__ import annotations

import signal

from helpers.battery import ABSENT, UNCHANGED, Case

PROGRAM = "resnet-edge"
A, U = ABSENT, UNCHANGED
SIGINT, SIGTERM, SIGHUP = signal.SIGINT, signal.SIGTERM, signal.SIGHUP
ORT = ("--backend", "onnxruntime")
RANDOM = ("--arch", "resnet20", "--random-weights")
FP32_RANDOM = ("compile", *RANDOM, "--fp32", *ORT)
REBUILD = "rebuild the bundle (resnet-edge compile) or re-copy it"
FIX_CKPT = "pass a checkpoint written by resnet-edge train, or re-create it"
FIX_CALIB = "re-create the set with resnet-edge calibset"
FIX_IMAGE = "remove or replace the image named"
FIX_LEAVES = "a bundle carries its files: put the file back in the bundle and list it by its name there, or rebuild the bundle"
FIX_SYMLINK = "replace the symlink with the file itself (cp --remove-destination TARGET LINK), or rebuild the bundle"
FIX_SPACE = "free disk space or raise the file-size limit (ulimit -f), or choose another --out; the old file is kept"


def _c(id, argv, code, stderr, todo, outputs=(), **extra) -> Case:
    return Case(id=id, argv=tuple(argv), exit_code=code, stderr=stderr, todo=todo, outputs=tuple(outputs), **extra)


CASES = [
    # ---------------------------------------------------------------- the group and `models`
    _c("unknown-command", ["bogus"], 2, r"^error: No such command 'bogus'", "run resnet-edge --help for the commands"),
    _c("group-unknown-option", ["--nope", "models"], 2, r"^error: No such option '--nope'", "run resnet-edge --help for the options"),
    _c("models-unknown-option", ["models", "--bogus"], 2, r"^error: No such option '--bogus'", "run resnet-edge models --help"),
    _c("models-option-value", ["models", "--json", "x"], 2, r"^error: Got unexpected extra argument \(x\)", "models takes no arguments"),
    # ---------------------------------------------------------------- train
    _c("train-bad-arch", ["train", "--arch", "resnet19", "--data", "shapes", "--out", "{out}"], 2, r"^error: Invalid value for '--arch'",
       "pick a name from resnet-edge models", [("{out}", A)]),
    _c("train-missing-data", ["train", "--arch", "resnet20", "--out", "{out}"], 2, r"^error: Missing option '--data'", "pass --data DIR, cifar10:DIR or shapes[:N]", [("{out}", A)]),
    _c("train-data-absent", ["train", "--arch", "resnet20", "--data", "{tmp}/nope", "--out", "{out}"], 2, r"^error: data directory .*nope does not exist",
       "pass an existing folder, cifar10:DIR or shapes[:N]", [("{out}", A)]),
    _c("train-shapes-not-number", ["train", "--arch", "resnet20", "--data", "shapes:abc", "--out", "{out}"], 2, r"must be an integer", "write shapes:N with N >= the class count", [("{out}", A)]),
    _c("train-epochs-zero", ["train", "--arch", "resnet20", "--data", "shapes", "--epochs", "0", "--out", "{out}"], 2, r"^error: Invalid value for '--epochs'", "pass --epochs 1 or more", [("{out}", A)]),
    _c("train-bad-schedule", ["train", "--arch", "resnet20", "--data", "shapes", "--schedule", "cosine", "--out", "{out}"], 2, r"^error: Invalid value for '--schedule'", "use step or plateau", [("{out}", A)]),
    _c("train-empty-data", ["train", "--arch", "resnet20", "--data", "{tmp}/empty", "--out", "{out}"], 2, r"is empty; it needs one sub-folder of images per class",
       "put one sub-folder of images per class in the data folder", [("{out}", A)], setup="empty_dir"),
    _c("train-earlier-run", ["train", "--arch", "resnet20", "--data", "shapes:48", "--out", "{run}"], 2, r"holds an earlier run \(last.pth, best.pth\); pass --resume",
       "pass --resume to continue the run, --force to start afresh, or another --out", [("{run}/last.pth", U), ("{run}/best.pth", U)], setup="earlier_run"),
    _c("train-resume-absent", ["train", "--arch", "resnet20", "--data", "shapes:48", "--out", "{out}", "--resume"], 2, r"--resume was given but .*last.pth does not exist",
       "drop --resume to start a new run", [("{out}/last.pth", A)]),
    _c("train-resume-other-arch", ["train", "--arch", "resnet32", "--data", "shapes:48", "--out", "{run}", "--resume"], 2, r"is a resnet20 run, not resnet32",
       "resume with the run's --arch, or use another --out", [("{run}/last.pth", U)], setup="earlier_run"),
    _c("train-resume-damaged", ["train", "--arch", "resnet20", "--data", "shapes:48", "--out", "{run}", "--resume"], 2, r"checkpoint .*last.pth is damaged: it has no 'state_dict'",
       FIX_CKPT, [("{run}/last.pth", U)], setup="damaged_run"),
    _c("train-out-is-file", ["train", "--arch", "resnet20", "--data", "shapes:48", "--out", "{file}"], 2, r"^error: Invalid value for '--out'",
       "--out is a run directory, not a file", [("{file}", U)], setup="plain_file"),
    _c("train-corrupt-image", ["train", "--arch", "resnet20", "--data", "{data}", "--out", "{out}", "--epochs", "1", "--batch-size", "2", "--workers", "0"], 2,
       r"cannot read image .*bad.png", FIX_IMAGE, [("{out}/last.pth", A)], setup="truncated_image", progress=True),
    _c("train-image-bomb", ["train", "--arch", "resnet20", "--data", "{data}", "--out", "{out}", "--epochs", "1", "--batch-size", "2", "--workers", "0"], 2,
       r"image .*bomb.png is too large to decode", "downscale the image or remove it", [("{out}/last.pth", A)], setup="bomb_image", progress=True),
    _c("train-sigint", ["train", "--arch", "resnet20", "--data", "shapes", "--epochs", "30", "--workers", "0", "--out", "{out}"], 130, r"^error: interrupted$",
       "nothing to do: nothing half-written was left", [("{out}/last.pth", A), ("{out}/best.pth", A)], subprocess=True, signal=SIGINT, signal_when=r"^training resnet20"),
    _c("train-sigterm", ["train", "--arch", "resnet20", "--data", "shapes", "--epochs", "30", "--workers", "0", "--out", "{run}", "--force"], 143, r"^error: terminated by SIGTERM$",
       "nothing to do: the run's checkpoints are the last complete ones", [("{run}/last.pth", U), ("{run}/best.pth", U)], setup="earlier_run",
       subprocess=True, signal=SIGTERM, signal_when=r"^training resnet20"),
    _c("train-disk-full", ["train", "--arch", "resnet20", "--data", "shapes:48", "--epochs", "1", "--batch-size", "16", "--workers", "0", "--out", "{run}", "--force"], 1,
       r"^error: cannot write .*last.pth: File too large", FIX_SPACE, [("{run}/last.pth", U), ("{run}/best.pth", U)], setup="earlier_run",
       subprocess=True, ulimit_fsize=200_000),
    _c("train-out-not-writable", ["train", "--arch", "resnet20", "--data", "shapes:48", "--out", "{ro}/run"], 2, r"--out .*run/last.pth: cannot write to .*ro",
       "choose an --out you may write", [("{ro}/run", A)], setup="read_only_dir", subprocess=True, unprivileged=True),
    # ---------------------------------------------------------------- calibset
    _c("calibset-missing-out", ["calibset", "--data", "shapes:48", "--count", "4"], 2, r"^error: Missing option '--out'", "pass --out calibration/NAME.json"),
    _c("calibset-count-and-per-class", ["calibset", "--data", "shapes:48", "--count", "4", "--per-class", "1", "--out", "{tmp}/s.json"], 2, r"pass exactly one of --per-class K or --count N",
       "pass --per-class K or --count N, not both", [("{tmp}/s.json", A)]),
    _c("calibset-no-size", ["calibset", "--data", "shapes:48", "--out", "{tmp}/s.json"], 2, r"pass exactly one of --per-class K or --count N", "pass --per-class K or --count N", [("{tmp}/s.json", A)]),
    _c("calibset-per-class-zero", ["calibset", "--data", "shapes:48", "--per-class", "0", "--out", "{tmp}/s.json"], 2, r"^error: Invalid value for '--per-class'", "pass 1 or more", [("{tmp}/s.json", A)]),
    _c("calibset-bad-split", ["calibset", "--data", "shapes:48", "--count", "4", "--split", "test", "--out", "{tmp}/s.json"], 2, r"^error: Invalid value for '--split'", "use train or val", [("{tmp}/s.json", A)]),
    _c("calibset-not-json", ["calibset", "--data", "shapes:48", "--count", "4", "--out", "{tmp}/s.txt"], 2, r"a calibration set is a \.json file", "name the set NAME.json", [("{tmp}/s.txt", A)]),
    _c("calibset-exists", ["calibset", "--data", "shapes:48", "--count", "4", "--out", "{set}"], 2, r"already exists; pass --force", "pass --force to replace it or choose another --out",
       [("{set}", U)], setup="calibration_set"),
    _c("calibset-data-absent", ["calibset", "--data", "{tmp}/nope", "--count", "4", "--out", "{tmp}/s.json"], 2, r"data directory .*nope does not exist", "pass an existing data folder", [("{tmp}/s.json", A)]),
    _c("calibset-replace-disk-full", ["calibset", "--data", "shapes:48", "--count", "40", "--out", "{set}", "--force"], 1, r"^error: cannot write .*set.json: File too large", FIX_SPACE,
       [("{set}", U)], setup="calibration_set", subprocess=True, ulimit_fsize=2_000),
    _c("calibset-sigint", ["-v", "calibset", "--data", "shapes:60000", "--count", "60000", "--out", "{tmp}/s.json"], 130, r"^error: interrupted$",
       "nothing to do: no file was written", [("{tmp}/s.json", A)], subprocess=True, signal=SIGINT, signal_when=r"^hashing", progress=True),
    _c("calibset-sigterm", ["-v", "calibset", "--data", "shapes:60000", "--count", "60000", "--out", "{set}", "--force"], 143, r"^error: terminated by SIGTERM$",
       "nothing to do: the old set is kept", [("{set}", U)], setup="calibration_set", subprocess=True, signal=SIGTERM, signal_when=r"^hashing", progress=True),
    # ---------------------------------------------------------------- compile: arguments
    _c("compile-no-precision", ["compile", *RANDOM, *ORT, "--out", "{out}"], 2, r"pass one of --fp32, --fp16, --bf16 or --int8", "pass one precision flag", [("{out}", A)]),
    _c("compile-two-precisions", ["compile", *RANDOM, "--fp16", "--int8", *ORT, "--out", "{out}"], 2, r"pass only one of --fp32, --fp16, --bf16 or --int8 \(got --fp16 and --int8\)",
       "pass one precision flag", [("{out}", A)]),
    _c("compile-bad-backend", ["compile", *RANDOM, "--fp32", "--backend", "tvm", "--out", "{out}"], 2, r"^error: Invalid value for '--backend'", "see --help for the backends", [("{out}", A)]),
    _c("compile-missing-out", ["compile", *RANDOM, "--fp32"], 2, r"^error: Missing option '--out'", "pass --out DIR"),
    _c("compile-batch-not-int", ["compile", *RANDOM, "--fp32", "--batch", "x", "--out", "{out}"], 2, r"^error: Invalid value for '--batch'", "pass an integer", [("{out}", A)]),
    _c("compile-out-exists", [*FP32_RANDOM, "--out", "{bundle}"], 2, r"already exists; pass --force", "pass --force to replace the bundle or choose another --out", [("{bundle}", U)],
       progress=True),
    _c("compile-out-not-bundle", [*FP32_RANDOM, "--out", "{tmp}/notes", "--force"], 2, r"exists and is not a bundle; refusing to replace it",
       "choose another --out: only a bundle is replaced", [("{tmp}/notes", U)], setup="notes_dir", progress=True),
    _c("compile-int8-no-calibration", ["compile", *RANDOM, "--int8", *ORT, "--out", "{out}"], 2, r"INT8 needs real calibration images",
       "pass --calib-data SPEC or --calib-set FILE", [("{out}", A)], progress=True),
    # ---------------------------------------------------------------- compile: weights files
    _c("compile-weights-absent", ["compile", "--arch", "resnet20", "--weights", "{tmp}/nope.pth", "--fp32", *ORT, "--out", "{out}"], 2, r"weights file .*nope.pth does not exist",
       "pass an existing .pth file", [("{out}", A)], progress=True),
    _c("compile-weights-not-torch", ["compile", "--arch", "resnet20", "--weights", "{file}", "--fp32", *ORT, "--out", "{out}"], 2, r"is not a PyTorch weights file",
       "pass a .pth checkpoint", [("{out}", A)], setup="plain_file", progress=True),
    _c("compile-weights-list", ["compile", "--arch", "resnet20", "--weights", "{tmp}/w.pth", "--fp32", *ORT, "--out", "{out}"], 2, r"holds a list, not a checkpoint",
       FIX_CKPT, [("{out}", A)], setup="ckpt_list", progress=True),
    _c("compile-ckpt-no-arch", ["compile", "--arch", "resnet20", "--weights", "{tmp}/w.pth", "--fp32", *ORT, "--out", "{out}"], 2, r"checkpoint .*w.pth is damaged: it has no 'arch'",
       FIX_CKPT, [("{out}", A)], setup="ckpt_no_arch", progress=True),
    _c("compile-ckpt-no-state-dict", ["compile", "--arch", "resnet20", "--weights", "{tmp}/w.pth", "--fp32", *ORT, "--out", "{out}"], 2, r"is damaged: it has no 'state_dict'",
       FIX_CKPT, [("{out}", A)], setup="ckpt_no_state_dict", progress=True),
    _c("compile-ckpt-state-dict-type", ["compile", "--arch", "resnet20", "--weights", "{tmp}/w.pth", "--fp32", *ORT, "--out", "{out}"], 2, r"'state_dict' is not a dict of tensors",
       FIX_CKPT, [("{out}", A)], setup="ckpt_bad_state_dict", progress=True),
    _c("compile-ckpt-classes-type", ["compile", "--arch", "resnet20", "--weights", "{tmp}/w.pth", "--fp32", *ORT, "--out", "{out}"], 2, r"'classes' is not a list of class names",
       FIX_CKPT, [("{out}", A)], setup="ckpt_bad_classes", progress=True),
    _c("compile-ckpt-other-arch", ["compile", "--arch", "resnet32", "--weights", "{ckpt}", "--fp32", *ORT, "--out", "{out}"], 2, r"is for resnet20, not resnet32",
       "pass --arch resnet20 or the checkpoint for the arch", [("{out}", A)], progress=True),
    _c("compile-not-resnet-state-dict", ["compile", "--arch", "resnet20", "--weights", "{tmp}/w.pth", "--fp32", *ORT, "--out", "{out}"], 2, r"is not a ResNet state_dict",
       "pass a ResNet checkpoint or torchvision state_dict", [("{out}", A)], setup="ckpt_foreign", progress=True),
    # ---------------------------------------------------------------- compile: calibration inputs
    _c("compile-calibset-absent", ["compile", *RANDOM, "--int8", *ORT, "--calib-set", "{tmp}/none.json", "--out", "{out}"], 2, r"calibration set .*none.json does not exist",
       "make one with resnet-edge calibset", [("{out}", A)], progress=True),
    _c("compile-calibset-truncated", ["compile", *RANDOM, "--int8", *ORT, "--calib-set", "{set}", "--out", "{out}"], 2, r"calibration set .* is unreadable \(JSONDecodeError",
       FIX_CALIB, [("{out}", A)], setup="calibset_truncated", progress=True),
    _c("compile-calibset-oversized", ["compile", *RANDOM, "--int8", *ORT, "--calib-set", "{set}", "--out", "{out}"], 2, r"more than a set can be \(16 MiB\)",
       FIX_CALIB, [("{out}", A)], setup="calibset_oversized", progress=True),
    _c("compile-calibset-not-object", ["compile", *RANDOM, "--int8", *ORT, "--calib-set", "{set}", "--out", "{out}"], 2, r"is not a resnet-edge calibration set",
       FIX_CALIB, [("{out}", A)], setup="calibset_array", progress=True),
    _c("compile-calibset-entry-keys", ["compile", *RANDOM, "--int8", *ORT, "--calib-set", "{set}", "--out", "{out}"], 2, r"is damaged \(bad image entries",
       FIX_CALIB, [("{out}", A)], setup="calibset_entry_keys", progress=True),
    _c("compile-calibset-empty", ["compile", *RANDOM, "--int8", *ORT, "--calib-set", "{set}", "--out", "{out}"], 2, r"lists no images",
       "re-create the set with a larger --per-class or --count", [("{out}", A)], setup="calibset_empty", progress=True),
    _c("compile-calib-image-truncated", ["compile", *RANDOM, "--int8", *ORT, "--calib-data", "{data}", "--out", "{out}"], 2, r"cannot read image .*bad.png",
       FIX_IMAGE, [("{out}", A)], setup="truncated_image", progress=True),
    _c("compile-calib-image-bomb", ["compile", *RANDOM, "--int8", *ORT, "--calib-data", "{data}", "--out", "{out}"], 2, r"image .*bomb.png is too large to decode",
       "downscale the image or remove it", [("{out}", A)], setup="bomb_image", progress=True),
    # ---------------------------------------------------------------- compile: faults
    _c("compile-sigint", [*FP32_RANDOM, "--out", "{out}"], 130, r"^error: interrupted$", "nothing to do: no partial bundle was left", [("{out}", A)],
       subprocess=True, signal=SIGINT, signal_when=r"^building resnet20", progress=True),
    _c("compile-sigterm", [*FP32_RANDOM, "--out", "{out}"], 143, r"^error: terminated by SIGTERM$", "nothing to do: no partial bundle was left", [("{out}", A)],
       subprocess=True, signal=SIGTERM, signal_when=r"^building resnet20", progress=True),
    _c("compile-sighup-replacing", [*FP32_RANDOM, "--out", "{bundle}", "--force"], 129, r"^error: terminated by SIGHUP$", "nothing to do: the old bundle is kept",
       [("{bundle}", U)], subprocess=True, signal=SIGHUP, signal_when=r"^building resnet20", progress=True),
    _c("compile-replace-disk-full", [*FP32_RANDOM, "--out", "{bundle}", "--force"], 1, r"^error: cannot write .*bundle: File too large", FIX_SPACE, [("{bundle}", U)],
       subprocess=True, ulimit_fsize=200_000, progress=True),
    _c("compile-tmpfs-full", [*FP32_RANDOM, "--out", "{small}/b"], 1, r"^error: cannot write .*: No space left on device", FIX_SPACE, [("{small}/b", A)],
       setup="small_tmpfs", subprocess=True, progress=True),
    _c("compile-out-not-writable", [*FP32_RANDOM, "--out", "{ro}/b"], 2, r"b: cannot write to .*ro \(permission denied\)", "choose an --out you may write",
       [("{ro}/b", A)], setup="read_only_dir", subprocess=True, unprivileged=True, progress=True),
    _c("compile-race", [*FP32_RANDOM, "--out", "{out}"], 2, r"already exists; pass --force", "another compile wrote --out first: use its bundle or pass --force",
       setup="race", subprocess=True, progress=True),
    # ---------------------------------------------------------------- validate (and any command that loads a bundle)
    _c("validate-bundle-absent", ["validate", "{tmp}/nope", "--data", "shapes:48"], 2, r"bundle .*nope does not exist", "pass the directory resnet-edge compile wrote"),
    _c("validate-not-bundle", ["validate", "{tmp}/notes", "--data", "shapes:48"], 2, r"is not a bundle \(no manifest.json\)", "pass the directory resnet-edge compile wrote",
       setup="notes_dir"),
    _c("validate-missing-data", ["validate", "{bundle}"], 2, r"^error: Missing option '--data'", "pass --data SPEC"),
    _c("validate-manifest-truncated", ["validate", "{bundle}", "--data", "shapes:48"], 1, r"manifest.json is not valid JSON", REBUILD, setup="manifest_truncated"),
    _c("validate-manifest-oversized", ["validate", "{bundle}", "--data", "shapes:48"], 1, r"more than a manifest can be \(16 MiB\)", REBUILD, setup="manifest_oversized"),
    _c("validate-manifest-not-object", ["validate", "{bundle}", "--data", "shapes:48"], 1, r"manifest.json is not a manifest object", REBUILD, setup="manifest_array"),
    _c("validate-manifest-field-type", ["validate", "{bundle}", "--data", "shapes:48"], 1, r"'files' is not a JSON object", REBUILD, setup="manifest_files_type"),
    _c("validate-manifest-newer", ["validate", "{bundle}", "--data", "shapes:48"], 1, r"newer than this resnet-edge reads .*; upgrade resnet-edge", "upgrade resnet-edge",
       setup="manifest_newer"),
    _c("validate-artifact-tampered", ["validate", "{bundle}", "--data", "shapes:48"], 1, r"model.onnx does not match its sha256", REBUILD, setup="artifact_tampered"),
    _c("validate-artifact-missing", ["validate", "{bundle}", "--data", "shapes:48"], 1, r"is incomplete: model.onnx is missing", REBUILD, setup="artifact_missing"),
    _c("validate-artifact-outside", ["validate", "{bundle}", "--data", "shapes:48"], 1, r'file name "\.\./outside/model\.onnx" leaves the bundle directory', FIX_LEAVES,
       setup="artifact_outside"),
    _c("validate-artifact-absolute", ["validate", "{bundle}", "--data", "shapes:48"], 1, r'file name "/\S*/model\.onnx" leaves the bundle directory', FIX_LEAVES,
       setup="artifact_absolute"),
    _c("validate-artifact-symlink-outside", ["validate", "{bundle}", "--data", "shapes:48"], 1,
       r"model\.onnx is a symlink that leaves the bundle \(to \S*/outside/model\.onnx\); a copied bundle would break: copy the file in", FIX_SYMLINK,
       setup="artifact_symlink_outside"),
    _c("validate-bundle-changed-while-loading", ["validate", "{bundle}", "--data", "shapes:48"], 1, r"changed while it was being loaded",
       "load it again once the copy or rebuild is complete", setup="changed_while_loading"),
    _c("validate-report-is-dir", ["validate", "{bundle}", "--data", "shapes:48", "--report", "{tmp}"], 2, r"^error: Invalid value for '--report': .* is a directory", "pass a file name"),
    _c("validate-report-under-file", ["validate", "{bundle}", "--data", "shapes:48", "--report", "{file}/r.json"], 2, r"is not a directory", "pass a path in a directory",
       setup="plain_file"),
    _c("validate-baseline-disk-full", ["-q", "validate", "{bundle}", "--data", "shapes:48", "--limit", "8", "--baseline", "{report}", "--update-baseline"], 1,
       r"^error: cannot write .*report.json: File too large", FIX_SPACE, [("{report}", U)], setup="old_baseline", subprocess=True, ulimit_fsize=64, progress=True),
    _c("validate-classes-differ", ["validate", "{bundle}", "--data", "{data}"], 2, r"^error: --data \S+ class names differ from the model.s \(data only: .apple.",
       "rename the class folders to the bundle's classes, or pass --class-map FILE or --by-index", setup="other_classes", progress=True),
    # ---------------------------------------------------------------- bench
    _c("bench-bundle-absent", ["bench", "{tmp}/nope"], 2, r"bundle .*nope does not exist", "pass the directory resnet-edge compile wrote"),
    _c("bench-bad-batch-sizes", ["bench", "{bundle}", "--batch-sizes", "1,x"], 2, r"batch", "pass positive integers, comma-separated"),
    _c("bench-iters-not-int", ["bench", "{bundle}", "--iters", "many"], 2, r"^error: Invalid value for '--iters'", "pass an integer"),
    _c("bench-tampered", ["bench", "{bundle}"], 1, r"model.onnx does not match its sha256", REBUILD, setup="artifact_tampered"),
    _c("bench-report-disk-full", ["-q", "bench", "{bundle}", "--batch-sizes", "1", "--warmup", "1", "--iters", "2", "--rounds", "1", "--no-baseline", "--report", "{report}"], 1,
       r"^error: cannot write .*report.json: File too large", FIX_SPACE, [("{report}", U)], setup="old_report", subprocess=True, ulimit_fsize=64, progress=True),
    _c("bench-plot-disk-full", ["-q", "bench", "{bundle}", "--batch-sizes", "1", "--warmup", "1", "--iters", "2", "--rounds", "1", "--no-baseline", "--plot", "{plot}"], 1,
       r"^error: cannot write .*plot.png: File too large", FIX_SPACE, [("{plot}", U)], setup="old_plot", subprocess=True, ulimit_fsize=64, progress=True),
    # ---------------------------------------------------------------- sensitivity
    _c("sensitivity-bad-arch", ["sensitivity", "--arch", "resnet7", "--data", "shapes:48"], 2, r"^error: Invalid value for '--arch'", "pick a name from resnet-edge models"),
    _c("sensitivity-missing-data", ["sensitivity", "--arch", "resnet20"], 2, r"^error: Missing option '--data'", "pass --data SPEC"),
    _c("sensitivity-bad-mode", ["sensitivity", "--arch", "resnet20", "--data", "shapes:48", "--mode", "all"], 2, r"^error: Invalid value for '--mode'", "see --help for the modes"),
    _c("sensitivity-ckpt-damaged", ["sensitivity", "--arch", "resnet20", "--weights", "{tmp}/w.pth", "--data", "shapes:48", "--calib-data", "shapes:48"], 2, r"is damaged: it has no 'arch'", FIX_CKPT,
       setup="ckpt_no_arch", progress=True),
    # ---------------------------------------------------------------- demo
    _c("demo-epochs-zero", ["demo", "--epochs", "0"], 2, r"^error: Invalid value for '--epochs'", "pass --epochs 1 or more"),
    _c("demo-unknown-option", ["demo", "--gpu"], 2, r"^error: No such option '--gpu'", "run resnet-edge demo --help"),
    # ---------------------------------------------------------------- curves (runs set up by tests/helpers/curves_runs.py)
    _c("curves-no-runs", ["curves"], 2, r"^error: Missing argument 'RUN_DIR\.\.\.'", "pass one or more run directories (the --out of resnet-edge train)"),
    _c("curves-run-absent", ["curves", "{tmp}/nope"], 2, r"run directory .*nope does not exist", "pass the --out of resnet-edge train"),
    _c("curves-no-metrics", ["curves", "{tmp}/notes"], 2, r"notes has no metrics.jsonl", "pass a run directory written by resnet-edge train, or wait for its first epoch",
       setup="notes_dir"),
    _c("curves-empty-run", ["curves", "{run}", "--report", "{report}"], 2, r"has no complete epoch in metrics.jsonl \(an empty run\)",
       "wait for the run's first epoch, or pass another run", [("{report}", A)], setup="curves_empty_run"),
    _c("curves-mixed-datasets", ["curves", "{tmp}/plain20", "{tmp}/plain56", "--plot", "{plot}"], 2,
       r"trained on different datasets \(plain20 on shapes; plain56 on cifar10:\S+\)", "compare runs on one dataset, or pass --allow-mixed",
       [("{plot}", A)], setup="curves_mixed_runs"),
    _c("curves-plot-format", ["curves", "{tmp}/nope", "--plot", "{tmp}/fig.pdf"], 2, r"--plot .*fig.pdf: the file name must end in \.png or \.svg",
       "name the plot FILE.png or FILE.svg", [("{tmp}/fig.pdf", A)]),
]
