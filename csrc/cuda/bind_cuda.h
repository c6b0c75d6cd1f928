// bind_cuda.h — helpers shared by the CUDA binding files: launch errors, the current stream, typed pointers.
#pragma once

#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>

#include <stdexcept>
#include <string>

#include "../bind.h"

namespace fakequant {

inline void check_launch(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(std::string("fakequant: CUDA ") + what + ": " + cudaGetErrorString(e));
}

inline cudaStream_t stream() { return c10::cuda::getCurrentCUDAStream().stream(); }

template <class T>
T* ptr(const at::Tensor& t) {
  return t.data_ptr<T>();
}

void bind_cuda_int8(pybind11::module_& m);  // bind_cuda_int8.cpp

}  // namespace fakequant
