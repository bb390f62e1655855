"""Named parameters of the torch-tensorrt API functions the TensorRT backend calls, per release."""

# Named parameters of torch_tensorrt.dynamo.compile / convert_exported_program_to_serialized_trt_engine,
# read from the 2.8.0 and 2.14.0 wheels' torch_tensorrt/dynamo/_compiler.py (the keywords this backend
# may pass must be among them; enabled_precisions must be absent from 2.14).
COMPILE_2_8 = set(
    "exported_program inputs arg_inputs kwarg_inputs device assume_dynamic_shape_support sparse_weights "
    "enabled_precisions engine_capability num_avg_timing_iters workspace_size dla_sram_size dla_local_dram_size "
    "dla_global_dram_size truncate_double require_full_compilation min_block_size torch_executed_ops "
    "torch_executed_modules pass_through_build_failures max_aux_streams version_compatible optimization_level "
    "use_python_runtime use_fast_partitioner enable_experimental_decompositions dryrun hardware_compatible "
    "timing_cache_path lazy_engine_init cache_built_engines reuse_cached_engines engine_cache_dir engine_cache_size "
    "custom_engine_cache use_explicit_typing use_fp32_acc refit_identical_engine_weights strip_engine_weights "
    "immutable_weights enable_weight_streaming tiling_optimization_level l2_limit_for_tiling offload_module_to_cpu".split()
)
CONVERT_2_8 = set(
    "exported_program inputs arg_inputs kwarg_inputs enabled_precisions assume_dynamic_shape_support workspace_size "
    "min_block_size torch_executed_ops pass_through_build_failures max_aux_streams version_compatible "
    "optimization_level use_python_runtime truncate_double use_fast_partitioner enable_experimental_decompositions "
    "device require_full_compilation sparse_weights engine_capability num_avg_timing_iters dla_sram_size "
    "dla_local_dram_size dla_global_dram_size calibrator allow_shape_tensors timing_cache_path use_explicit_typing "
    "use_fp32_acc refit_identical_engine_weights strip_engine_weights immutable_weights enable_weight_streaming "
    "tiling_optimization_level l2_limit_for_tiling offload_module_to_cpu".split()
)
COMPILE_2_14 = set(
    "exported_program inputs arg_inputs kwarg_inputs device disable_tf32 assume_dynamic_shape_support sparse_weights "
    "engine_capability num_avg_timing_iters workspace_size dla_sram_size dla_local_dram_size dla_global_dram_size "
    "truncate_double use_complex_decomposition require_full_compilation min_block_size torch_executed_ops "
    "torch_executed_modules pass_through_build_failures max_aux_streams version_compatible optimization_level "
    "use_python_runtime use_fast_partitioner enable_experimental_decompositions dryrun hardware_compatible "
    "timing_cache_path lazy_engine_init cache_built_engines reuse_cached_engines engine_cache_dir engine_cache_size "
    "custom_engine_cache use_fp32_acc refit_identical_engine_weights strip_engine_weights immutable_weights "
    "enable_weight_streaming tiling_optimization_level l2_limit_for_tiling offload_module_to_cpu "
    "use_distributed_mode_trace enable_autocast autocast_low_precision_type autocast_excluded_nodes "
    "autocast_excluded_ops autocast_max_output_threshold autocast_max_depth_of_reduction "
    "autocast_calibration_dataloader cpu_memory_budget enable_resource_partitioning dynamically_allocate_resources "
    "decompose_attention disabled_constant_fold_exclusions attn_bias_is_causal fallback_data_dependent_ops".split()
)
CONVERT_2_14 = set(
    "exported_program inputs arg_inputs kwarg_inputs device disable_tf32 assume_dynamic_shape_support sparse_weights "
    "engine_capability num_avg_timing_iters workspace_size dla_sram_size dla_local_dram_size dla_global_dram_size "
    "truncate_double use_complex_decomposition require_full_compilation min_block_size torch_executed_ops "
    "torch_executed_modules pass_through_build_failures max_aux_streams version_compatible optimization_level "
    "use_python_runtime use_fast_partitioner enable_experimental_decompositions dryrun hardware_compatible "
    "timing_cache_path lazy_engine_init cache_built_engines reuse_cached_engines engine_cache_dir engine_cache_size "
    "custom_engine_cache use_fp32_acc refit_identical_engine_weights strip_engine_weights immutable_weights "
    "enable_weight_streaming tiling_optimization_level l2_limit_for_tiling offload_module_to_cpu "
    "use_distributed_mode_trace decompose_attention disabled_constant_fold_exclusions attn_bias_is_causal "
    "lift_mutable_buffers arg_input_binding_names kwarg_input_binding_names output_binding_names".split()
)

# tensorrt.BuilderFlag members, read from the tensorrt.so of the tensorrt-cu12-bindings wheels (the enum's
# member strings, in order). "INT8" has no string of its own in either 10.x binary (the linker merged it into
# the tail of "UINT8"); it is listed for 10.x by the 10.3 enum's docstring "Enable Int8 layer selection" and
# the 10.x API reference. FP16, BF16, INT8 and OBEY/PREFER_PRECISION_CONSTRAINTS are gone from 11.x.
_FLAGS_10_3 = (
    "FP16 BF16 INT8 DEBUG GPU_FALLBACK REFIT DISABLE_TIMING_CACHE TF32 SPARSE_WEIGHTS SAFETY_SCOPE OBEY_PRECISION_CONSTRAINTS "
    "PREFER_PRECISION_CONSTRAINTS DIRECT_IO REJECT_EMPTY_ALGORITHMS VERSION_COMPATIBLE ERROR_ON_TIMING_CACHE_MISS "
    "DISABLE_COMPILATION_CACHE WEIGHTLESS STRIP_PLAN REFIT_IDENTICAL WEIGHT_STREAMING INT4 REFIT_INDIVIDUAL"
)
_FLAGS_11 = (
    "DEBUG GPU_FALLBACK DISABLE_TIMING_CACHE EDITABLE_TIMING_CACHE TF32 SPARSE_WEIGHTS SAFETY_SCOPE DIRECT_IO VERSION_COMPATIBLE "
    "ERROR_ON_TIMING_CACHE_MISS DISABLE_COMPILATION_CACHE STRIP_PLAN REFIT_IDENTICAL WEIGHT_STREAMING REFIT_INDIVIDUAL "
    "STRICT_NANS MONITOR_MEMORY DISTRIBUTIVE_INDEPENDENCE"
)
BUILDER_FLAGS = {
    "10.3.0": set(_FLAGS_10_3.split()),
    "10.13.3.9": set(_FLAGS_10_3.split()) | {"EDITABLE_TIMING_CACHE", "STRICT_NANS", "MONITOR_MEMORY", "DISTRIBUTIVE_INDEPENDENCE"},
    "11.1.0.106": set(_FLAGS_11.split()),
    "11.4.0.106": set(_FLAGS_11.split()),
}
# ITensor.set_dynamic_range(min, max): in the 10.3.0 and 10.13.3.9 bindings (ITensorDoc::set_dynamic_range,
# "[DEPRECATED] Deprecated in TensorRT 10.1"), absent from 11.1.0.106 and 11.4.0.106.
HAS_SET_DYNAMIC_RANGE = {"10.3.0": True, "10.13.3.9": True, "11.1.0.106": False, "11.4.0.106": False}
