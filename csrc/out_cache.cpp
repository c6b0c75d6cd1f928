// out_cache.cpp — the output cache of out_cache.h: a c10::Allocator with per-size free lists.
//
// glibc returns large freed blocks to the OS (an mmap per block, or a trimmed heap top), so a
// 26 MB output allocated again every step costs thousands of page faults. Blocks freed here go to
// a free list of their size (sizes rounded up to 64 KiB) and serve the next request of that size.
// At most FAKEQUANT_CPU_CACHE_MB (default 1024) megabytes wait in the lists: a block that would pass
// that first evicts the lists of other sizes (the workload's shapes changed), else it is freed.
#include "out_cache.h"

#include <ATen/EmptyTensor.h>

#include <pthread.h>

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

namespace fakequant {
namespace {

constexpr size_t kGranule = size_t{64} << 10;
constexpr size_t kHeader = 64;  // the block's size, in front of the 64-byte aligned data

class OutputCache final : public c10::Allocator {
 public:
  OutputCache() {
    const char* mb = std::getenv("FAKEQUANT_CPU_CACHE_MB");
    limit_ = (mb ? static_cast<size_t>(std::strtoull(mb, nullptr, 10)) : size_t{1024}) << 20;
    // A fork while another thread holds the lock would leave the child's copy locked forever.
    pthread_atfork([] { instance().mutex_.lock(); }, [] { instance().mutex_.unlock(); },
                   [] { instance().mutex_.unlock(); });
  }

  c10::DataPtr allocate(size_t n) override {
    const size_t size = (n + kHeader + kGranule - 1) / kGranule * kGranule;
    void* base = take(size);
    if (base == nullptr && posix_memalign(&base, 64, size) != 0)
      TORCH_CHECK_WITH(OutOfMemoryError, false, "fakequant: out of CPU memory allocating ", size, " bytes");
    *static_cast<size_t*>(base) = size;
    return {static_cast<char*>(base) + kHeader, base, &give_back, c10::Device(c10::DeviceType::CPU)};
  }

  void copy_data(void* dest, const void* src, std::size_t count) const override {
    default_copy_data(dest, src, count);
  }

  int64_t cached() {
    const std::lock_guard<std::mutex> lock(mutex_);
    return static_cast<int64_t>(cached_);
  }

  int64_t release() {
    std::vector<void*> blocks;
    size_t bytes = 0;
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      for (auto& [size, list] : free_) blocks.insert(blocks.end(), list.begin(), list.end());
      free_.clear();
      std::swap(bytes, cached_);
    }
    for (void* b : blocks) std::free(b);
    return static_cast<int64_t>(bytes);
  }

  static OutputCache& instance() {
    static OutputCache* cache = new OutputCache();  // never destroyed: tensors may outlive static teardown
    return *cache;
  }

 private:
  void* take(size_t size) {
    const std::lock_guard<std::mutex> lock(mutex_);
    auto it = free_.find(size);
    if (it == free_.end() || it->second.empty()) return nullptr;
    void* b = it->second.back();
    it->second.pop_back();
    cached_ -= size;
    return b;
  }

  static void give_back(void* base) {
    OutputCache& c = instance();
    const size_t size = *static_cast<size_t*>(base);
    std::vector<void*> evicted;
    bool kept = false;
    {
      const std::lock_guard<std::mutex> lock(c.mutex_);
      for (auto it = c.free_.begin(); c.cached_ + size > c.limit_ && it != c.free_.end(); ++it) {
        if (it->first == size) continue;
        evicted.insert(evicted.end(), it->second.begin(), it->second.end());
        c.cached_ -= it->first * it->second.size();
        it->second.clear();
      }
      if (c.cached_ + size <= c.limit_) {
        c.free_[size].push_back(base);
        c.cached_ += size;
        kept = true;
      }
    }
    for (void* b : evicted) std::free(b);
    if (!kept) std::free(base);
  }

  std::mutex mutex_;
  std::unordered_map<size_t, std::vector<void*>> free_;
  size_t cached_ = 0, limit_ = 0;
};

}  // namespace

// Small CPU outputs come from torch's CPU allocator directly (at::detail, no dispatcher call: the ops on a
// small layer's tensors notice one).
at::Tensor output_like(const at::Tensor& x, at::ScalarType dtype) {
  if (!x.device().is_cpu() || !x.is_non_overlapping_and_dense())
    return at::empty_like(x, x.options().dtype(dtype), at::MemoryFormat::Preserve);
  const int64_t nbytes = x.numel() * static_cast<int64_t>(c10::elementSize(dtype));
  if (nbytes < kCachedOutputBytes) return at::detail::empty_strided_cpu(x.sizes(), x.strides(), dtype);
  return at::detail::empty_strided_generic(x.sizes(), x.strides(), &OutputCache::instance(),
                                           c10::DispatchKeySet(c10::DispatchKey::CPU), dtype);
}

at::Tensor output_empty(at::IntArrayRef sizes, const at::TensorOptions& options) {
  if (!options.device().is_cpu()) return at::empty(sizes, options);
  const at::ScalarType dtype = c10::typeMetaToScalarType(options.dtype());
  const int64_t nbytes = c10::multiply_integers(sizes) * static_cast<int64_t>(options.dtype().itemsize());
  if (nbytes < kCachedOutputBytes) return at::detail::empty_cpu(sizes, dtype);
  return at::detail::empty_generic(sizes, &OutputCache::instance(), c10::DispatchKeySet(c10::DispatchKey::CPU),
                                   dtype, std::nullopt);
}

int64_t cached_output_bytes() { return OutputCache::instance().cached(); }

int64_t release_cached_outputs() { return OutputCache::instance().release(); }

void bind_out_cache(pybind11::module_& m) {
  m.def("cached_output_bytes", &cached_output_bytes);
  m.def("release_cached_outputs", &release_cached_outputs);
}

}  // namespace fakequant
