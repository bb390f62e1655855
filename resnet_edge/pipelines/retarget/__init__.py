"""``resnet-edge retarget``: rebuild a bundle for another target or backend without recalibrating (``run``)."""

from .run import Parent, RetargetOptions, read_parent, reference_weights, retarget_bundle, simulator_check

__all__ = ["Parent", "RetargetOptions", "read_parent", "reference_weights", "retarget_bundle", "simulator_check"]
