// The sigmoid focal loss behind cb_sigmoid, cb_focal and efl, fused into one pass per row,
// and the backward's row scaling that also collects EFL's per-class gradient sums.
//
// The formula of losses/sigmoid_focal.py (sigmoid_focal_formula): every entry is
// a binary problem; written at x = z for a non-target entry and x = -z for the target,
//
//   term    w s^gamma softplus(x),                      s = sigmoid(x)
//   d/dx    w s^gamma (s + gamma (1 - s) softplus(x))
//
// with gamma one number, or one per class (EFL), and weights w per row on the target
// (pos_weight) and per class elsewhere (neg_weight). Stable for any |x|: everything comes
// from e = exp(-|x|) and log1p(e), so there is no log of 0 and no overflow.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <tuple>

#include "op_common.h"
#include "vector_math.h"

namespace oltr_losses {
namespace {

// The term and its derivative in x at one non-target-form entry, in double (the target entries).
void scalar_focal_term(double x, double gamma, double weight, double* value, double* slope) {
  const double e = std::exp(-std::abs(x));
  const double r = 1.0 / (1.0 + e);
  const double s = x >= 0.0 ? r : e * r;
  const double one_minus_s = x >= 0.0 ? e * r : r;
  const double log1p_e = std::log1p(e);
  const double softplus = std::max(x, 0.0) + log1p_e;
  const double modulator = gamma == 0.0 ? 1.0 : std::exp(gamma * (std::min(x, 0.0) - log1p_e));
  *value = weight * modulator * softplus;
  *slope = weight * modulator * (s + gamma * one_minus_s * softplus);
}

template <typename scalar_t>
struct SigmoidFocalArgs {
  const scalar_t* logits;
  const int64_t* targets;
  scalar_t gamma;               // used when class_gamma is null
  const scalar_t* class_gamma;  // (C,) or null
  const scalar_t* pos_weight;   // (B,) or null
  const scalar_t* neg_weight;   // (C,) or null
  scalar_t* loss;
  scalar_t* grad;  // null: the loss only
  int64_t num_classes;
};

template <typename scalar_t>
void sigmoid_focal_rows(const SigmoidFocalArgs<scalar_t>& a, int64_t begin, int64_t end) {
  using V = Vec<scalar_t>;
  const int64_t C = a.num_classes;
  const bool integer_gamma = a.class_gamma == nullptr && is_small_integer(a.gamma);
  const int64_t gamma_int = integer_gamma ? static_cast<int64_t>(a.gamma) : 0;
  const V zero(0), one(1);

  for (int64_t i = begin; i < end; ++i) {
    const scalar_t* z = a.logits + i * C;
    scalar_t* grad = a.grad != nullptr ? a.grad + i * C : nullptr;
    const int64_t y = a.targets[i];
    V total(0);
    // Non-target entries: x = z.
    auto entries = [&](int64_t j, int64_t count) {
      const V x = load(z + j, count);
      const V e = x.abs().neg().exp();
      const V r = one / (one + e);
      const V er = e * r;
      const V positive = x >= zero;  // a lane mask
      const V s = V::blendv(er, r, positive);
      const V log1p_e = log1p_unit(e);
      const V softplus = at::vec::maximum(x, zero) + log1p_e;
      const V gamma = a.class_gamma != nullptr ? load(a.class_gamma + j, count) : V(a.gamma);
      V weighted;  // w s^gamma
      if (integer_gamma) {
        weighted = integer_power(s, gamma_int);
      } else {
        weighted = (gamma * (at::vec::minimum(x, zero) - log1p_e)).exp();
      }
      if (a.neg_weight != nullptr) {
        weighted = weighted * load(a.neg_weight + j, count);
      }
      total += keep_first(weighted * softplus, count, scalar_t(0));
      if (grad != nullptr) {
        const V one_minus_s = V::blendv(r, er, positive);
        store(weighted * at::vec::fmadd(gamma * one_minus_s, softplus, s), grad + j, count);
      }
    };
    // The target entry is left out of the vector loops rather than subtracted afterwards:
    // at a large logit its non-target term would swamp the row's sum.
    for_each_chunk<scalar_t>(0, y, entries);
    for_each_chunk<scalar_t>(y + 1, C, entries);

    const double gamma_y = a.class_gamma != nullptr ? a.class_gamma[y] : a.gamma;
    const double weight_y = a.pos_weight != nullptr ? a.pos_weight[i] : 1.0;
    double value_y, slope_y;
    scalar_focal_term(-static_cast<double>(z[y]), gamma_y, weight_y, &value_y, &slope_y);
    a.loss[i] = static_cast<scalar_t>(lane_sum(total) + value_y);
    if (grad != nullptr) {
      grad[y] = static_cast<scalar_t>(-slope_y);  // x = -z: the derivative changes sign
    }
  }
}

void check_vector(const std::optional<at::Tensor>& t, int64_t length, const at::Tensor& like, const char* name) {
  if (!t.has_value()) return;
  TORCH_CHECK(t->dim() == 1 && t->size(0) == length, "sigmoid_focal: ", name, " must have shape (", length,
              ",), got ", t->sizes());
  TORCH_CHECK(t->scalar_type() == like.scalar_type(), "sigmoid_focal: ", name, " must have the logits' dtype");
}

template <typename scalar_t>
const scalar_t* data_or_null(const std::optional<at::Tensor>& t) {
  return t.has_value() ? t->const_data_ptr<scalar_t>() : nullptr;
}

std::tuple<at::Tensor, at::Tensor> sigmoid_focal(
    const at::Tensor& logits,
    const at::Tensor& targets,
    double gamma,
    const std::optional<at::Tensor>& class_gamma,
    const std::optional<at::Tensor>& pos_weight,
    const std::optional<at::Tensor>& neg_weight,
    bool with_grad) {
  const at::Tensor z = logits.contiguous();
  const at::Tensor y = targets.contiguous();
  check_logits_and_targets(z, y, "sigmoid_focal");
  const int64_t batch = z.size(0), num_classes = z.size(1);
  check_vector(class_gamma, num_classes, z, "class_gamma");
  check_vector(pos_weight, batch, z, "pos_weight");
  check_vector(neg_weight, num_classes, z, "neg_weight");
  const auto contiguous = [](const std::optional<at::Tensor>& t) -> std::optional<at::Tensor> {
    return t.has_value() ? std::optional<at::Tensor>(t->contiguous()) : std::nullopt;
  };
  const auto class_gamma_c = contiguous(class_gamma), pos_weight_c = contiguous(pos_weight),
             neg_weight_c = contiguous(neg_weight);
  at::Tensor loss = at::empty({batch}, z.options());
  at::Tensor grad = at::empty({with_grad ? batch : 0, with_grad ? num_classes : 0}, z.options());
  const int64_t grain = rows_per_task(num_classes);
  AT_DISPATCH_FLOATING_TYPES(z.scalar_type(), "sigmoid_focal", [&] {
    const SigmoidFocalArgs<scalar_t> args{
        z.const_data_ptr<scalar_t>(),
        y.const_data_ptr<int64_t>(),
        static_cast<scalar_t>(gamma),
        data_or_null<scalar_t>(class_gamma_c),
        data_or_null<scalar_t>(pos_weight_c),
        data_or_null<scalar_t>(neg_weight_c),
        loss.mutable_data_ptr<scalar_t>(),
        with_grad ? grad.mutable_data_ptr<scalar_t>() : nullptr,
        num_classes,
    };
    at::parallel_for(0, batch, grain, [&](int64_t begin, int64_t end) { sigmoid_focal_rows(args, begin, end); });
  });
  return {loss, grad};
}

// Rows per chunk of scale_rows_collect: a fixed size, so that its sums do not depend on the
// number of threads.
constexpr int64_t kCollectChunkRows = 64;

// out = grad * upstream[:, None], with the collection EFL needs: |out| at each row's target
// entry (B,), and summed over the other rows of each class (C,). Rows are scaled in parallel
// chunks, each writing its rows front to back (a fresh output is faulted in page by page) and
// keeping its own per-class partial sums; the partials are then added in chunk order, so the
// sums are the same whatever the thread count.
std::tuple<at::Tensor, at::Tensor, at::Tensor> scale_rows_collect(
    const at::Tensor& grad_in, const at::Tensor& upstream_in, const at::Tensor& targets_in) {
  const at::Tensor grad = grad_in.contiguous();
  const at::Tensor y = targets_in.contiguous();
  check_logits_and_targets(grad, y, "scale_rows_collect");
  TORCH_CHECK(upstream_in.dim() == 1 && upstream_in.size(0) == grad.size(0),
              "scale_rows_collect: upstream must have shape (", grad.size(0), ",)");
  const at::Tensor upstream = upstream_in.to(grad.scalar_type()).contiguous();
  const int64_t batch = grad.size(0), num_classes = grad.size(1);
  const int64_t chunks = (batch + kCollectChunkRows - 1) / kCollectChunkRows;
  at::Tensor out = at::empty_like(grad);
  at::Tensor target_abs = at::empty({batch}, grad.options());
  at::Tensor off_target_sums = at::zeros({num_classes}, grad.options());
  at::Tensor partial = at::zeros({chunks, num_classes}, grad.options());
  AT_DISPATCH_FLOATING_TYPES(grad.scalar_type(), "scale_rows_collect", [&] {
    using V = Vec<scalar_t>;
    const scalar_t* g = grad.const_data_ptr<scalar_t>();
    const scalar_t* up = upstream.const_data_ptr<scalar_t>();
    const int64_t* t = y.const_data_ptr<int64_t>();
    scalar_t* o = out.mutable_data_ptr<scalar_t>();
    scalar_t* at_target = target_abs.mutable_data_ptr<scalar_t>();
    scalar_t* partial_sums = partial.mutable_data_ptr<scalar_t>();
    const int64_t grain = rows_per_task(kCollectChunkRows * num_classes);  // chunks per task
    at::parallel_for(0, chunks, grain, [&](int64_t first, int64_t last) {
      for (int64_t chunk = first; chunk < last; ++chunk) {
        scalar_t* sums = partial_sums + chunk * num_classes;
        const int64_t row_end = std::min(batch, (chunk + 1) * kCollectChunkRows);
        for (int64_t i = chunk * kCollectChunkRows; i < row_end; ++i) {
          const V scale(up[i]);
          const scalar_t* g_row = g + i * num_classes;
          scalar_t* o_row = o + i * num_classes;
          auto off_target = [&](int64_t j, int64_t count) {
            const V v = load(g_row + j, count) * scale;
            store(v, o_row + j, count);
            store(load(sums + j, count) + v.abs(), sums + j, count);
          };
          // The row's own class is left out of the sums rather than subtracted afterwards: a
          // large target gradient would wipe out the small off-target ones of its column.
          const int64_t target = t[i];
          for_each_chunk<scalar_t>(0, target, off_target);
          for_each_chunk<scalar_t>(target + 1, num_classes, off_target);
          o_row[target] = g_row[target] * up[i];
          at_target[i] = std::abs(o_row[target]);
        }
      }
    });
    scalar_t* total = off_target_sums.mutable_data_ptr<scalar_t>();
    for (int64_t chunk = 0; chunk < chunks; ++chunk) {
      const scalar_t* sums = partial_sums + chunk * num_classes;
      for_each_chunk<scalar_t>(0, num_classes, [&](int64_t j, int64_t count) {
        store(load(total + j, count) + load(sums + j, count), total + j, count);
      });
    }
  });
  return {out, target_abs, off_target_sums};
}

}  // namespace

TORCH_LIBRARY_IMPL(oltr_losses, CPU, m) {
  m.impl("sigmoid_focal", &sigmoid_focal);
  m.impl("scale_rows_collect", &scale_rows_collect);
}

}  // namespace oltr_losses
