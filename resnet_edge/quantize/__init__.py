"""Quantization: calibration sets (``calibset``), ONNX Runtime INT8 calibration and Q/DQ placement
(``ort_calibrate``), and ModelOpt fake quantization for the TensorRT backend (``modelopt_ptq``).

Modules are imported on use: ``import resnet_edge.quantize.calibset`` needs neither ONNX Runtime nor
ModelOpt.
"""
