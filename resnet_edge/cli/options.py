"""Click options shared by several commands, with their defaults from ``core.defaults``.

A command stacks the decorators it needs, e.g. ``@arch_option()`` and ``@device_option(help=...)``;
each option's name, type and default are declared once here.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import click

from ..core import defaults
from ..models import list_models
from ..quantize.ranges import CALIBRATION_METHODS


def arch_option(help: str = "Registry name, e.g. resnet50 or resnet20 (see `resnet-edge models`)."):
    """``--arch``: a registry model name."""
    return click.option("--arch", required=True, type=click.Choice(list_models()), metavar="ARCH", help=help)


def weights_option():
    """``--weights``: a resnet-edge checkpoint or torchvision state_dict."""
    return click.option(
        "--weights",
        type=click.Path(dir_okay=False, path_type=Path),
        help="A resnet-edge checkpoint or a torchvision state_dict. Default: torchvision's local cache for ARCH.",
    )


def device_option(help: str):
    """``--device auto|cpu|cuda``."""
    return click.option("--device", default=defaults.DEVICE, show_default=True, type=click.Choice(["auto", "cpu", "cuda"]), help=help)


def calibration_options(data_help: str):
    """``--calib-data``, ``--calib-set``, ``--calib-images`` and ``--calib-method``, in that order."""

    def decorate(function):
        for option in reversed((
            click.option("--calib-data", metavar="SPEC", help=data_help),
            click.option("--calib-set", type=click.Path(dir_okay=False, path_type=Path), metavar="calibration/NAME.json",
                         help="A calibration-set manifest written by `resnet-edge calibset`."),
            click.option("--calib-images", type=int, metavar="N",
                         help=f"How many calibration images. Default: {defaults.CALIB_IMAGES} from --calib-data, the whole --calib-set."),
            click.option("--calib-method", default=defaults.CALIB_METHOD, show_default=True,
                         type=click.Choice(CALIBRATION_METHODS),
                         help="How activation ranges are chosen. auto: every rule (max, percentile 99.9/99.99/99.999, "
                              "mse, entropy) from one statistics pass, scored on held-out calibration images by "
                              "top-1 agreement and KL against FP32 with the target's INT8 simulator; the best is kept."),
        )):  # fmt: skip
            function = option(function)
        return function

    return decorate


def report_option(help: str = "Write the JSON report (schema: docs/validate-report.md)."):
    """``--report FILE.json``."""
    return click.option("--report", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE.json", help=help)


def command_line(ctx: click.Context) -> str:
    """The command as it could be typed again: its arguments and the options that differ from their defaults.

    A flag sharing its destination with others (``--fp32/--fp16/--int8``) is written once, as the
    flag whose value was chosen.
    """
    words = ["resnet-edge", ctx.info_name or ctx.command.name]
    seen: set[str] = set()
    for param in ctx.command.params:
        value = ctx.params.get(param.name)
        if isinstance(param, click.Argument):
            words.append(shlex.quote(str(value)))
            continue
        if param.name in seen:
            continue
        if value is None or value == param.default or (value is False and not param.secondary_opts):
            continue
        seen.add(param.name)
        if isinstance(param, click.Option) and param.is_flag and not isinstance(value, bool):
            words.append(_flag_for(ctx, param.name, value))
        elif isinstance(value, bool):
            words.append(param.opts[0] if value else param.secondary_opts[0])
        else:
            words += [param.opts[0], shlex.quote(str(value))]
    return " ".join(words)


def _flag_for(ctx: click.Context, name: str, value) -> str:
    """The flag among those sharing destination ``name`` whose ``flag_value`` is ``value``."""
    for param in ctx.command.params:
        if param.name == name and getattr(param, "flag_value", None) == value:
            return param.opts[0]
    return f"--{value}"


def class_map_options(data_flag: str = "--data"):
    """``--class-map FILE`` and ``--by-index``: how the labels of ``data_flag`` match the model's classes
    when their names differ (``resnet_edge.data.classmap``)."""

    def decorate(function):
        function = click.option(
            "--by-index", is_flag=True,
            help=f"Match {data_flag}'s labels to the model's classes by position, whatever their names.",
        )(function)
        return click.option(
            "--class-map", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
            help=f"Match {data_flag}'s class names to the model's: JSON {{\"data name\": \"model name\"}} or two columns per line.",
        )(function)

    return decorate
