"""Quantization: calibration sets, one activation-range implementation, and the two INT8 paths.

``calibset``          reproducible calibration-set manifests.
``ranges``            the one range implementation: ``TensorStats`` (min/max and a mergeable |x|
                      histogram) and the max / percentile / entropy / mse rules (``compute_amax``).
``onnx_collect``      runs an FP32 ONNX model and collects ``TensorStats`` per tensor.
``ort_calibrate``     the ONNX Runtime path: ranges -> Q/DQ ONNX (``quantize_model``).
``modelopt_ptq``      the ModelOpt path for TensorRT: fake-quant calibration (``calibrate``), with
                      ``range_calibrator`` (ranges from ``ranges``), ``residual`` (Q/DQ on the
                      residual add), ``quantizers`` (layer switches), ``qdq_export`` (torch.export).
``modelopt_import``   the one place ModelOpt is imported.

Modules are imported on use: ``import resnet_edge.quantize.calibset`` or ``.ranges`` needs neither
ONNX Runtime nor ModelOpt.
"""
