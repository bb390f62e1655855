# TensorRT's libraries from the pip wheels (site-packages/tensorrt_libs), for linking
# libtorchtrt_runtime.so from a pip torch-tensorrt. Its RUNPATH holds only Bazel build paths and pip
# TensorRT is normally loaded by Python's `import tensorrt` (ctypes), so without this the link fails
# on the runtime's libnvinfer.so.N dependency, or the app needs LD_LIBRARY_PATH. JetPack installs
# TensorRT into the system's library directory, where nothing here is needed: when no
# tensorrt_libs directory is found, nothing changes.
#
#   resnet_edge_find_tensorrt_libs(<out-var> HINTS <dir>...)
#     the first hint (a tensorrt_libs directory) that holds libnvinfer.so.*, resolved; "" if none.
#   resnet_edge_use_tensorrt_libs(<target> <dir>)
#     links <target> against <dir>'s libnvinfer.so.N (and libnvinfer_plugin.so.N when there),
#     adds <dir> to its link directories, to -rpath-link (PUBLIC: targets linking <target> resolve
#     the runtime's indirect dependencies at link time too) and to BUILD_RPATH and INSTALL_RPATH.
#
# Why link libnvinfer directly: the loader looks up a library's dependencies in that library's own
# RUNPATH only (DT_RUNPATH does not propagate), so the target's RUNPATH alone would not help
# libtorchtrt_runtime.so. As a direct dependency of <target>, libnvinfer.so.N is loaded through
# <target>'s RUNPATH first, and the runtime's request for the same soname is then already met.
# tests/test_cpp_infer.py checks all of this with stub libraries in a fake site-packages.

function(resnet_edge_find_tensorrt_libs out)
  cmake_parse_arguments(ARG "" "" "HINTS" ${ARGN})
  set(found "")
  foreach(dir IN LISTS ARG_HINTS)
    if(dir AND IS_DIRECTORY "${dir}")
      file(GLOB nvinfer "${dir}/libnvinfer.so*")
      if(nvinfer)
        get_filename_component(found "${dir}" REALPATH)
        break()
      endif()
    endif()
  endforeach()
  set(${out} "${found}" PARENT_SCOPE)
endfunction()

function(resnet_edge_use_tensorrt_libs target dir)
  # The soname files (libnvinfer.so.10, not libnvinfer.so.10.3.0): what the runtime asks for.
  file(GLOB candidates "${dir}/libnvinfer.so.*" "${dir}/libnvinfer_plugin.so.*")
  set(libs)
  foreach(lib IN LISTS candidates)
    get_filename_component(name "${lib}" NAME)
    if(name MATCHES "^libnvinfer(_plugin)?\\.so\\.[0-9]+$")
      list(APPEND libs "${lib}")
    endif()
  endforeach()
  if(NOT libs)
    message(FATAL_ERROR "resnet-edge: ${dir} has no libnvinfer.so.<major>")
  endif()
  list(SORT libs)
  target_link_directories(${target} PUBLIC "${dir}")
  target_link_options(${target} PUBLIC "LINKER:-rpath-link,${dir}")
  target_link_libraries(${target} PRIVATE "-Wl,--no-as-needed" ${libs} "-Wl,--as-needed")
  set_property(TARGET ${target} APPEND PROPERTY BUILD_RPATH "${dir}")
  set_property(TARGET ${target} APPEND PROPERTY INSTALL_RPATH "${dir}")
endfunction()
