"""The ``resnet-edge`` command line: one module per command, registered on one click group."""

from __future__ import annotations

from .bench_cmd import bench
from .calibset_cmd import calibset
from .compile_cmd import compile_command
from .curves_cmd import curves
from .demo_cmd import demo
from .diagnose_cmd import diagnose
from .doctor_cmd import doctor
from .export_config_cmd import export_config_command
from .group import main, one_line
from .models_cmd import models
from .retarget_cmd import retarget
from .sensitivity_cmd import sensitivity
from .train_cmd import train
from .validate_cmd import validate

for _command in (models, train, calibset, compile_command, validate, bench, sensitivity, demo, export_config_command, doctor, diagnose, retarget, curves):
    main.add_command(_command)

__all__ = ["main", "one_line"]
