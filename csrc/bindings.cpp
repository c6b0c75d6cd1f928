// bindings.cpp — the fakequant._C module: backend information and every op family's functions.
#include <ATen/Parallel.h>

#include "bind.h"
#include "cpu/isa.h"
#include "out_cache.h"

namespace py = pybind11;

PYBIND11_MODULE(_C, m) {
  m.doc() = "fakequant kernels";
  m.def("detected_isa", [] { return std::string(fakequant::isa_name(fakequant::detected_isa())); });
  m.def("active_isa", [] {
    try {
      return std::string(fakequant::isa_name(fakequant::active_isa()));
    } catch (const std::invalid_argument& e) {
      throw py::value_error(e.what());
    }
  });
  m.def("num_threads", [] { return at::get_num_threads(); });
#ifdef FAKEQUANT_WITH_CUDA
  m.attr("cuda_built") = true;
#else
  m.attr("cuda_built") = false;
#endif
  fakequant::bind_fake_quant(m);
  fakequant::bind_lsq(m);
  fakequant::bind_fused_obs(m);
  fakequant::bind_int8(m);
  fakequant::bind_out_cache(m);
#ifdef FAKEQUANT_WITH_CUDA
  fakequant::bind_cuda(m);
#endif
}
