// The focal family (softmax CE, focal, ASL, CFL, CASL) fused into one pass per row.
//
// The formula of losses/focal_family.py, in the notation of losses/fast/focal_functions.py
// (whose FocalFamilyFunction docstring derives the gradient): s = log_softmax(z), p = exp(s), u = eps / C,
// t_y = 1 - eps + u, q_j = p_j^gamma_neg,
//
//   loss = -t_y w_y s_y - u [(1 - xi)(S1 - q_y s_y) + xi (S0 - s_y)],   S1 = sum q s, S0 = sum s
//   dloss/dz_k = Gn_k - p_k SG + [k = y] delta,
//   Gn_k = -u [(1 - xi) q_k (1 + gamma_neg s_k) + xi],  delta = G_y - Gn_y,  G_y = -t_y (w_y + slope_y),
//   SG = -u [(1 - xi)(A + gamma_neg S1) + xi C] + delta,  A = sum q.
//
// With uniform non-target weights (gamma_neg = 0, xi = 1 or eps = 0) Gn_k = -u and the
// q terms drop out. A row of C logits stays in L1 cache, so its four short passes
// (max, exp and sum, q sums, gradient) cost about one read of the logits, one exp per
// element and one write of the gradient: less memory traffic than log_softmax plus
// its backward, which is what F.cross_entropy does.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <cmath>
#include <tuple>
#include <vector>

#include "op_common.h"
#include "vector_math.h"

namespace oltr_losses {
namespace {

struct FocalParams {
  double gamma_pos, gamma_neg, gamma_hc, xi, eps;
};

inline double blend(double low, double high, double xi) {
  if (xi == 0.0) return low;
  if (xi == 1.0) return high;
  return (1.0 - xi) * low + xi * high;
}

// Target weight w_y and p_y s_y dw_y/dp_y of one row, from s_y = log p_y (fast/focal_functions.py:
// _target_weight_and_slope, the same cases).
void target_weight_and_slope(double s_y, const FocalParams& prm, double* weight, double* slope) {
  double low = 1.0, low_slope = 0.0, high = 1.0, high_slope = 0.0;
  const double p = std::exp(s_y);
  const double p_log_p = p * s_y;
  if (prm.xi != 1.0 && prm.gamma_pos != 0.0) {
    const double one_minus_p = -std::expm1(s_y);  // no cancellation as p -> 1
    if (prm.gamma_pos >= 1.0) {
      const double reduced = std::pow(one_minus_p, prm.gamma_pos - 1.0);
      low = reduced * one_minus_p;
      low_slope = -prm.gamma_pos * reduced * p_log_p;
    } else {
      // (1 - p)^(a - 1) is unbounded for a < 1; s / (1 - p) -> -1 as p -> 1 keeps it finite.
      low = std::pow(one_minus_p, prm.gamma_pos);
      const double ratio = one_minus_p > 0.0 ? s_y / one_minus_p : -1.0;
      low_slope = -prm.gamma_pos * p * ratio * low;
    }
  }
  if (prm.xi != 0.0 && prm.gamma_hc != 0.0) {
    const double one_plus_p = 1.0 + p;
    const double reduced = std::pow(one_plus_p, prm.gamma_hc - 1.0);
    high = reduced * one_plus_p;
    high_slope = prm.gamma_hc * reduced * p_log_p;
  }
  *weight = blend(low, high, prm.xi);
  *slope = blend(low_slope, high_slope, prm.xi);
}

template <typename scalar_t>
void softmax_focal_rows(
    const scalar_t* logits,
    const int64_t* targets,
    scalar_t* loss,
    scalar_t* grad,  // nullptr: the loss only
    int64_t begin,
    int64_t end,
    int64_t num_classes,
    const FocalParams& prm) {
  using V = Vec<scalar_t>;
  const int64_t C = num_classes;
  const double u = prm.eps / static_cast<double>(C);
  const double t_y = 1.0 - prm.eps + u;
  // Non-target weights all equal to one: no q = p^gamma_neg terms at all.
  const bool uniform = prm.gamma_neg == 0.0 || prm.xi == 1.0 || prm.eps == 0.0;
  const bool integer_gamma = is_small_integer(prm.gamma_neg);
  const int64_t gamma_int = integer_gamma ? static_cast<int64_t>(prm.gamma_neg) : 0;
  const scalar_t gamma_neg = static_cast<scalar_t>(prm.gamma_neg);
  std::vector<scalar_t> scratch(grad == nullptr ? C : 0);  // exp(z - max) when no gradient is written

  for (int64_t i = begin; i < end; ++i) {
    const scalar_t* z = logits + i * C;
    scalar_t* e = grad != nullptr ? grad + i * C : scratch.data();
    const int64_t y = targets[i];

    const scalar_t max = row_max(z, C);
    V sum_e(0), sum_d(0);
    const V vmax(max);
    for_each_chunk<scalar_t>(0, C, [&](int64_t j, int64_t count) {
      const V dj = load(z + j, count) - vmax;  // <= 0, whatever offset the logits share
      const V ej = dj.exp();
      store(ej, e + j, count);
      sum_e += keep_first(ej, count, scalar_t(0));
      sum_d += keep_first(dj, count, scalar_t(0));
    });
    const double total_e = lane_sum(sum_e);
    const double log_total = std::log(total_e);
    const double s_y = (static_cast<double>(z[y]) - static_cast<double>(max)) - log_total;
    // sum_j s_j from the max-shifted logits: sum_j z_j - C lse would cancel two large numbers
    // when the logits share a large offset.
    const double s0 = lane_sum(sum_d) - static_cast<double>(C) * log_total;

    // s_j = (z_j - max) - log(total): rounding lse itself would cost an ulp of the logits' offset.
    const V vlog_total(static_cast<scalar_t>(log_total));
    const V inv_total(static_cast<scalar_t>(1.0 / total_e));
    // q_j = p_j^gamma_neg: repeated products for small integers, else exp(gamma_neg s_j).
    auto power_of_p = [&](const V& p, const V& s) {
      return integer_gamma ? integer_power(p, gamma_int) : (s * V(gamma_neg)).exp();
    };

    double a = 0.0, s1 = 0.0, q_y = 0.0;
    if (!uniform) {
      V sum_q(0), sum_qs(0);
      for_each_chunk<scalar_t>(0, C, [&](int64_t j, int64_t count) {
        const V s = (load(z + j, count) - vmax) - vlog_total;
        const V q = power_of_p(load(e + j, count) * inv_total, s);
        sum_q += keep_first(q, count, scalar_t(0));
        sum_qs += keep_first(q * s, count, scalar_t(0));
      });
      a = lane_sum(sum_q);
      s1 = lane_sum(sum_qs);
      q_y = std::exp(prm.gamma_neg * s_y);
    }

    double weight = 1.0, slope = 0.0;
    target_weight_and_slope(s_y, prm, &weight, &slope);
    double value = -t_y * weight * s_y;
    if (uniform) {
      value -= u * (s0 - s_y);
    } else {
      value -= u * ((1.0 - prm.xi) * (s1 - q_y * s_y) + prm.xi * (s0 - s_y));
    }
    loss[i] = static_cast<scalar_t>(value);
    if (grad == nullptr) {
      continue;
    }

    const double g_y = -t_y * (weight + slope);
    const double low = u * (1.0 - prm.xi);
    double delta, total;
    if (uniform) {
      delta = g_y + u;
      total = delta - u * static_cast<double>(C);
    } else {
      delta = g_y + low * q_y * (1.0 + prm.gamma_neg * s_y) + u * prm.xi;
      total = delta - low * (a + prm.gamma_neg * s1) - u * prm.xi * static_cast<double>(C);
    }
    const V minus_total(static_cast<scalar_t>(-total));
    if (uniform) {
      const V minus_u(static_cast<scalar_t>(-u));
      for_each_chunk<scalar_t>(0, C, [&](int64_t j, int64_t count) {
        const V p = load(e + j, count) * inv_total;
        store(at::vec::fmadd(p, minus_total, minus_u), e + j, count);
      });
    } else {
      const V minus_low(static_cast<scalar_t>(-low));
      const V minus_u_xi(static_cast<scalar_t>(-u * prm.xi));
      const V one(1);
      for_each_chunk<scalar_t>(0, C, [&](int64_t j, int64_t count) {
        const V s = (load(z + j, count) - vmax) - vlog_total;
        const V p = load(e + j, count) * inv_total;
        const V h = power_of_p(p, s) * at::vec::fmadd(V(gamma_neg), s, one);  // q (1 + gamma_neg s)
        store(at::vec::fmadd(p, minus_total, at::vec::fmadd(h, minus_low, minus_u_xi)), e + j, count);
      });
    }
    e[y] = static_cast<scalar_t>(static_cast<double>(e[y]) + delta);
  }
}

std::tuple<at::Tensor, at::Tensor> softmax_focal(
    const at::Tensor& logits,
    const at::Tensor& targets,
    double gamma_pos,
    double gamma_neg,
    double gamma_hc,
    double xi,
    double eps,
    bool with_grad) {
  check_logits_and_targets(logits, targets, "softmax_focal");
  TORCH_CHECK(logits.size(1) > 0, "softmax_focal: logits need at least one class");
  const at::Tensor z = logits.contiguous();
  const at::Tensor y = targets.contiguous();
  const int64_t batch = z.size(0), num_classes = z.size(1);
  const int64_t* y_data = y.const_data_ptr<int64_t>();
  at::Tensor loss = at::empty({batch}, z.options());
  at::Tensor grad = at::empty({with_grad ? batch : 0, with_grad ? num_classes : 0}, z.options());
  const FocalParams prm{gamma_pos, gamma_neg, gamma_hc, xi, eps};
  const int64_t grain = rows_per_task(num_classes);
  AT_DISPATCH_FLOATING_TYPES(z.scalar_type(), "softmax_focal", [&] {
    const scalar_t* z_data = z.const_data_ptr<scalar_t>();
    scalar_t* loss_data = loss.mutable_data_ptr<scalar_t>();
    scalar_t* grad_data = with_grad ? grad.mutable_data_ptr<scalar_t>() : nullptr;
    at::parallel_for(0, batch, grain, [&](int64_t begin, int64_t end) {
      softmax_focal_rows<scalar_t>(z_data, y_data, loss_data, grad_data, begin, end, num_classes, prm);
    });
  });
  return {loss, grad};
}

}  // namespace

TORCH_LIBRARY_IMPL(oltr_losses, CPU, m) {
  m.impl("softmax_focal", &softmax_focal);
}

}  // namespace oltr_losses
