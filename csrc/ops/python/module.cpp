// The Python entry point of resnet_edge._C. It exposes nothing: importing it loads this shared
// object, whose static TORCH_LIBRARY initialisers register the ops with the dispatcher; Python
// then reaches them as torch.ops.resnet_edge.*. (The CMake build of libresnet_edge_ops.so leaves
// this file out, so C++ applications do not link against Python.)

#include <Python.h>

extern "C" {
PyObject* PyInit__C(void) {
  static struct PyModuleDef module_def = {
      PyModuleDef_HEAD_INIT,
      "_C", /* name */
      nullptr, /* documentation */
      -1, /* per-interpreter state size: none */
      nullptr, /* methods */
  };
  return PyModule_Create(&module_def);
}
}
