// bind_fused_obs.cpp — torch's fused moving-average observer + fake quant (buffers updated in place) and
// the choose_qparams binding: a min / max pass, the qparams rule of cpu/qparams.h, then the fake-quant runner.
#include <limits>
#include <optional>
#include <tuple>
#include <vector>

#include "bind.h"
#include "bind_fake_quant.h"
#include "checks.h"
#include "cpu/fake_quant.h"
#include "cpu/minmax.h"
#include "cpu/qparams.h"
#include "dispatch.h"
#include "layout.h"
#include "masked_autograd.h"
#include "reduce.h"

namespace fakequant {
namespace {

using MinMaxKernel = void (*)(const MinMaxParams&, int64_t, int64_t, float*, float*);
constexpr MinMaxKernel kMinMax[] = {minmax_ref, minmax_avx2, minmax_avx512};

constexpr float kInf = std::numeric_limits<float>::infinity();

// Min and max of x per channel of `axis` (of all of x when axis < 0), into mn / mx.
void channel_minmax(const at::Tensor& x, int64_t axis, std::vector<float>& mn, std::vector<float>& mx) {
  const int64_t channels = static_cast<int64_t>(mn.size());
  MinMaxParams p;
  p.dtype = check_float_input(x, "input");
  p.it = make_strided(walk_order(x, axis), x, x, axis, &p.ch_dim);
  p.x = x.data_ptr();
  const BlockPlan plan(x.numel(), channels);
  std::vector<float> partial(plan.count * 2 * channels);  // per block: minima, maxima
  const MinMaxKernel k = pick_kernel(kMinMax);
  for_each_block(plan, [&](int64_t b, int64_t begin, int64_t end) {
    float* lo = partial.data() + b * 2 * channels;
    std::fill(lo, lo + channels, kInf);
    std::fill(lo + channels, lo + 2 * channels, -kInf);
    k(p, begin, end, lo, lo + channels);
  });
  std::fill(mn.begin(), mn.end(), kInf);
  std::fill(mx.begin(), mx.end(), -kInf);
  for (int64_t b = 0; b < plan.count; ++b) {
    for (int64_t c = 0; c < channels; ++c) {
      mn[c] = fold_min(mn[c], partial[b * 2 * channels + c]);
      mx[c] = fold_max(mx[c], partial[b * 2 * channels + channels + c]);
    }
  }
}

// observer_on / fake_quant_on (the fused module's long buffers, or any one-element flag).
bool flag_on(const at::Tensor& t) { return single_value(t) != 0; }

// A buffer's elements as a contiguous tensor; commit() writes them back when that took a copy.
struct Buffer {
  at::Tensor& dst;
  at::Tensor data;
  explicit Buffer(at::Tensor& t) : dst(t), data(t.contiguous()) {}
  void commit() {
    if (!data.is_same(dst)) dst.copy_(data);
  }
};

using FusedResult = std::tuple<at::Tensor, std::optional<at::Tensor>, std::vector<int64_t>>;

// (output, mask or None when the gradient passes everywhere, walk order for mask_grad). in_place: x is a
// dense intermediate of the caller's, which the output overwrites.
FusedResult fused(const at::Tensor& x, const at::Tensor& observer_on, const at::Tensor& fake_quant_on,
                  at::Tensor running_min, at::Tensor running_max, at::Tensor scale, at::Tensor zero_point,
                  double averaging_const, int64_t qmin, int64_t qmax, int64_t ch_axis, bool per_row,
                  bool symmetric, bool need_mask, bool relu, bool in_place = false) {
  check_cpu(x, "input");
  check_float_input(x, "input");
  check_same_device({{"input", &x}, {"observer_on", &observer_on}, {"fake_quant_on", &fake_quant_on},
                     {"running_min", &running_min}, {"running_max", &running_max}, {"scale", &scale},
                     {"zero_point", &zero_point}});
  check_averaging_const(averaging_const);
  check_quant_range_nonempty(qmin, qmax);
  check_single(observer_on, "observer_on");
  check_single(fake_quant_on, "fake_quant_on");
  const bool quantize = flag_on(fake_quant_on);
  if (relu && !quantize) value_error("relu=True needs fake_quant_on (apply torch.relu, then this op)");
  check_dtype(running_min, "running_min", {at::kFloat});
  check_dtype(running_max, "running_max", {at::kFloat});
  check_dtype(scale, "scale", {at::kFloat});
  check_dtype(zero_point, "zero_point", {at::kInt});
  int64_t channels = 1;
  if (per_row) {
    check_axis(x, ch_axis, "ch_axis");
    channels = x.size(ch_axis);
    if (running_min.numel() == 0) {  // the first per-channel call sizes the buffers, as torch's does
      running_min.resize_({channels}).fill_(kInf);
      running_max.resize_({channels}).fill_(-kInf);
      scale.resize_({channels}).fill_(1.0);  // torch leaves these two uninitialised
      zero_point.resize_({channels}).fill_(0);
    }
    check_1d(running_min, "running_min", channels);
    check_1d(running_max, "running_max", channels);
    check_1d(scale, "scale", channels);
    check_1d(zero_point, "zero_point", channels);
  } else {
    if (ch_axis >= x.dim())
      value_error("ch_axis (" + std::to_string(ch_axis) + ") must be < input.dim() (" + std::to_string(x.dim()) + ")");
    check_single(running_min, "running_min");
    check_single(running_max, "running_max");
    check_single(scale, "scale");
    check_single(zero_point, "zero_point");
  }
  if (x.numel() == 0) return {x.clone(), std::nullopt, {}};

  Buffer rmin(running_min), rmax(running_max);
  float* lo = rmin.data.data_ptr<float>();
  float* hi = rmax.data.data_ptr<float>();
  if (flag_on(observer_on)) {
    std::vector<float> mn(channels), mx(channels);
    channel_minmax(x, per_row ? ch_axis : -1, mn, mx);
    if (relu) {  // the extremes of relu(x) are those of x through relu (a NaN stays NaN)
      for (int64_t i = 0; i < channels; ++i) mn[i] = relu_value(mn[i]), mx[i] = relu_value(mx[i]);
    }
    const float c = static_cast<float>(averaging_const);
    for (int64_t i = 0; i < channels; ++i) {
      lo[i] = moving_average(lo[i], mn[i], c);
      hi[i] = moving_average(hi[i], mx[i], c);
    }
    rmin.commit();
    rmax.commit();
  }
  if (!quantize) return {in_place ? x : x.clone(), std::nullopt, {}};

  Buffer s(scale), z(zero_point);
  float* sp = s.data.data_ptr<float>();
  int32_t* zp = z.data.data_ptr<int32_t>();
  std::vector<float> zp_float(channels);
  for (int64_t i = 0; i < channels; ++i) {
    const QParams q = choose_qparams(lo[i], hi[i], static_cast<int32_t>(qmin), static_cast<int32_t>(qmax), symmetric);
    sp[i] = q.scale;
    zp[i] = q.zero_point;
    zp_float[i] = static_cast<float>(q.zero_point);
  }
  s.commit();
  z.commit();
  auto [y, mask, order] = run_fake_quant(x, sp, zp_float.data(), per_row ? ch_axis : -1, ZeroPointMode::RoundThenAdd,
                                         per_row, qmin, qmax, need_mask, relu, in_place);
  return {y, need_mask ? std::optional<at::Tensor>(mask) : std::nullopt, order};
}

// fused()'s arguments after the input, from a Python call's positional arguments (the fake-quant module's
// _fused_args()).
struct FusedObsArgs {
  static constexpr size_t kCount = 12;
  at::Tensor observer_on, fake_quant_on, running_min, running_max, scale, zero_point;
  double averaging_const;
  int64_t qmin, qmax, ch_axis;
  bool per_row, symmetric;

  FusedObsArgs(const pybind11::args& a, size_t i)
      : observer_on(a[i].cast<at::Tensor>()), fake_quant_on(a[i + 1].cast<at::Tensor>()),
        running_min(a[i + 2].cast<at::Tensor>()), running_max(a[i + 3].cast<at::Tensor>()),
        scale(a[i + 4].cast<at::Tensor>()), zero_point(a[i + 5].cast<at::Tensor>()),
        averaging_const(a[i + 6].cast<double>()), qmin(a[i + 7].cast<int64_t>()), qmax(a[i + 8].cast<int64_t>()),
        ch_axis(a[i + 9].cast<int64_t>()), per_row(a[i + 10].cast<bool>()), symmetric(a[i + 11].cast<bool>()) {}

  FqResult run(const at::Tensor& x, bool need_mask, bool relu, bool in_place = false) const {
    auto [y, mask, order] = fused(x, observer_on, fake_quant_on, running_min, running_max, scale, zero_point,
                                  averaging_const, qmin, qmax, ch_axis, per_row, symmetric, need_mask, relu, in_place);
    return {y, mask.value_or(at::Tensor()), order};
  }
};

// Per element of min_val / max_val: (scale float32, zero_point int32) with min_val's shape.
std::tuple<at::Tensor, at::Tensor> choose_qparams_tensor(const at::Tensor& min_val, const at::Tensor& max_val,
                                                         int64_t qmin, int64_t qmax, bool symmetric) {
  check_quant_range_nonempty(qmin, qmax);
  check_cpu(min_val, "min_val");
  check_same_device({{"min_val", &min_val}, {"max_val", &max_val}});
  check_float_input(min_val, "min_val");
  check_float_input(max_val, "max_val");
  check_same_shape(min_val, "min_val", max_val, "max_val");
  const at::Tensor lo = min_val.to(at::kFloat).contiguous(), hi = max_val.to(at::kFloat).contiguous();
  at::Tensor scale = at::empty(min_val.sizes(), min_val.options().dtype(at::kFloat));
  at::Tensor zero_point = at::empty(min_val.sizes(), min_val.options().dtype(at::kInt));
  const float* l = lo.data_ptr<float>();
  const float* h = hi.data_ptr<float>();
  for (int64_t i = 0; i < lo.numel(); ++i) {
    const QParams q = choose_qparams(l[i], h[i], static_cast<int32_t>(qmin), static_cast<int32_t>(qmax), symmetric);
    scale.data_ptr<float>()[i] = q.scale;
    zero_point.data_ptr<int32_t>()[i] = q.zero_point;
  }
  return {scale, zero_point};
}

// BN folding's weight inputs: float32 CPU, weight of 2+ dims with gamma / running_var one per output channel.
void check_fold_weight(const at::Tensor& weight, const at::Tensor& gamma, const at::Tensor& running_var) {
  check_cpu(weight, "weight");
  if (weight.dim() < 2) value_error("weight must have 2 or more dims (output channels first)");
  check_same_device({{"weight", &weight}, {"gamma", &gamma}, {"running_var", &running_var}});
  check_dtype(weight, "weight", {at::kFloat});
  check_dtype(gamma, "gamma", {at::kFloat});
  check_dtype(running_var, "running_var", {at::kFloat});
  check_1d(gamma, "gamma", weight.size(0));
  check_1d(running_var, "running_var", gamma.numel());
}

// BN's per-channel vectors (and a layer bias when defined): float32 CPU, one element per channel of gamma.
void check_bn_vectors(const at::Tensor& gamma, const at::Tensor& beta, const at::Tensor& running_mean,
                      const at::Tensor& running_var, const at::Tensor& bias) {
  check_cpu(gamma, "gamma");
  check_same_device({{"gamma", &gamma}, {"beta", &beta}, {"running_mean", &running_mean},
                     {"running_var", &running_var}});
  std::vector<std::pair<const at::Tensor*, const char*>> all = {
      {&gamma, "gamma"}, {&beta, "beta"}, {&running_mean, "running_mean"}, {&running_var, "running_var"}};
  if (bias.defined()) {
    check_same_device({{"gamma", &gamma}, {"bias", &bias}});
    all.push_back({&bias, "bias"});
  }
  for (const auto& [t, name] : all) {
    check_dtype(*t, name, {at::kFloat});
    check_1d(*t, name, gamma.numel());
  }
}

}  // namespace

void bind_fused_obs(pybind11::module_& m) {
  using namespace pybind11::literals;
  // torch.fused_moving_avg_obs_fake_quant as an autograd node; relu: of relu(input), with the ReLU's
  // backward in the mask (torch's relu followed by this op, bit for bit).
  m.def("fused_obs_fake_quant_autograd",
        [](const at::Tensor& x, const at::Tensor& observer_on, const at::Tensor& fake_quant_on, at::Tensor running_min,
           at::Tensor running_max, at::Tensor scale, at::Tensor zero_point, double averaging_const, int64_t qmin,
           int64_t qmax, int64_t ch_axis, bool per_row, bool symmetric, bool relu) {
          return with_mask_backward(x, [&](bool need_mask) -> FqResult {
            auto [y, mask, order] = fused(x, observer_on, fake_quant_on, running_min, running_max, scale, zero_point,
                                          averaging_const, qmin, qmax, ch_axis, per_row, symmetric, need_mask, relu);
            return {y, mask.value_or(at::Tensor()), order};
          }, relu);
        },
        "input"_a, "observer_on"_a, "fake_quant_on"_a, "running_min"_a, "running_max"_a, "scale"_a, "zero_point"_a,
        "averaging_const"_a, "quant_min"_a, "quant_max"_a, "ch_axis"_a, "per_row_fake_quant"_a, "symmetric_quant"_a,
        "relu"_a = false);
  // BN folding's weight through the fused observer + fake quant (see bn_folded_weight).
  m.def("bn_folded_weight_fused_obs",
        [](const at::Tensor& weight, const at::Tensor& gamma, const at::Tensor& running_var, double eps, bool divide,
           const at::Tensor& observer_on, const at::Tensor& fake_quant_on, at::Tensor running_min,
           at::Tensor running_max, at::Tensor scale, at::Tensor zero_point, double averaging_const, int64_t qmin,
           int64_t qmax, int64_t ch_axis, bool per_row, bool symmetric) {
          check_fold_weight(weight, gamma, running_var);
          return bn_folded_weight(weight, gamma, running_var, eps, divide, [&](const at::Tensor& u, bool need_mask) {
            auto [q, mask, order] = fused(u, observer_on, fake_quant_on, running_min, running_max, scale, zero_point,
                                          averaging_const, qmin, qmax, ch_axis, per_row, symmetric, need_mask, false);
            return FqResult{q, mask.value_or(at::Tensor()), order};
          });
        },
        "weight"_a, "gamma"_a, "running_var"_a, "eps"_a, "divide"_a, "observer_on"_a, "fake_quant_on"_a,
        "running_min"_a, "running_max"_a, "scale"_a, "zero_point"_a, "averaging_const"_a, "quant_min"_a,
        "quant_max"_a, "ch_axis"_a, "per_row_fake_quant"_a, "symmetric_quant"_a);
  // BN folding's bias once BN uses running statistics (no fake quant; beside its weight above).
  m.def("bn_folded_bias",
        [](const at::Tensor& gamma, const at::Tensor& beta, const at::Tensor& running_mean,
           const at::Tensor& running_var, const std::optional<at::Tensor>& bias, double eps) {
          const at::Tensor b = bias.value_or(at::Tensor());
          check_bn_vectors(gamma, beta, running_mean, running_var, b);
          return bn_folded_bias(gamma, beta, running_mean, running_var, b, eps);
        },
        "gamma"_a, "beta"_a, "running_mean"_a, "running_var"_a, "bias"_a, "eps"_a);
  // A QAT ConvBn layer as one node (see conv_bn_folded). *args: the weight fake quant's fused-op arguments
  // (fused_obs_fake_quant_autograd's after the input), then optionally the output fake quant's and relu: the
  // node then also takes in the output fake quant (of relu(z) when relu). num_batches_tracked / momentum follow
  // torch's BatchNorm: while BN trains, the count goes up by one and momentum None averages with 1 / count.
  m.def("conv_bn_fused_obs",
        [](const at::Tensor& x, const at::Tensor& weight, const std::optional<at::Tensor>& bias, const at::Tensor& gamma,
           const at::Tensor& beta, const at::Tensor& running_mean, const at::Tensor& running_var,
           at::Tensor num_batches_tracked, double eps, std::optional<double> momentum, bool live,
           std::vector<int64_t> stride, std::vector<int64_t> padding, std::vector<int64_t> dilation, int64_t groups,
           const pybind11::args& args) {
          const at::Tensor b = bias.value_or(at::Tensor());
          check_fold_weight(weight, gamma, running_var);
          check_bn_vectors(gamma, beta, running_mean, running_var, b);
          check_same_device({{"input", &x}, {"weight", &weight}});
          check_dtype(x, "input", {at::kFloat});
          const size_t dims = static_cast<size_t>(weight.dim() - 2);
          for (const auto& [v, name] : {std::pair{&stride, "stride"}, {&padding, "padding"}, {&dilation, "dilation"}}) {
            if (v->size() != dims)
              value_error(std::string(name) + " must have " + std::to_string(dims) + " elements, one per spatial dim");
          }
          if (args.size() != FusedObsArgs::kCount && args.size() != 2 * FusedObsArgs::kCount + 1)
            value_error("conv_bn_fused_obs takes the weight fake quant's " + std::to_string(FusedObsArgs::kCount) +
                        " fused-op arguments, then optionally the output fake quant's and relu");
          const FusedObsArgs w_fq(args, 0);
          std::optional<FusedObsArgs> out_fq;
          bool relu = false;
          if (args.size() > FusedObsArgs::kCount) {
            out_fq.emplace(args, FusedObsArgs::kCount);
            relu = args[2 * FusedObsArgs::kCount].cast<bool>();
          }
          double factor = momentum.value_or(0.0);
          if (live) {
            check_cpu(num_batches_tracked, "num_batches_tracked");
            check_dtype(num_batches_tracked, "num_batches_tracked", {at::kLong});
            check_single(num_batches_tracked, "num_batches_tracked");
            num_batches_tracked.add_(1);
            if (!momentum) factor = 1.0 / static_cast<double>(*num_batches_tracked.const_data_ptr<int64_t>());
          }
          const ConvGeometry conv{std::move(stride), std::move(padding), std::move(dilation), groups};
          const auto weight_fq = [&](const at::Tensor& u, bool need_mask) { return w_fq.run(u, need_mask, false); };
          const ActFn act = [&](const at::Tensor& z, bool need_mask) {
            ActResult a;
            if (relu && !flag_on(out_fq->fake_quant_on)) {  // torch's relu, then the fused op (a copy of it)
              a.relu_out = at::relu(z);
              a.y = std::get<0>(out_fq->run(a.relu_out, false, false));
              return a;
            }
            std::tie(a.y, a.mask, a.order) = out_fq->run(z, need_mask, relu, /*in_place=*/true);
            a.relu_mask = relu;
            return a;
          };
          return conv_bn_folded(x, weight, b, gamma, beta, running_mean, running_var, eps, factor, live, conv,
                                weight_fq, out_fq ? &act : nullptr);
        },
        "input"_a, "weight"_a, "bias"_a, "gamma"_a, "beta"_a, "running_mean"_a, "running_var"_a,
        "num_batches_tracked"_a, "eps"_a, "momentum"_a, "live"_a, "stride"_a, "padding"_a, "dilation"_a, "groups"_a);
  m.def("choose_qparams", &choose_qparams_tensor, "min_val"_a, "max_val"_a, "quant_min"_a, "quant_max"_a,
        "symmetric"_a,
        "Per element: the (scale, zero_point) the fused observer chooses for [min_val, max_val] (fbgemm's rule).");
  m.def("fused_obs_isa", [] { return std::string(isa_name(dispatch_isa(Isa::Avx512))); });
}

}  // namespace fakequant
