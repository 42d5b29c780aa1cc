// Helpers shared by the fused loss kernels: row loops over at::vec::Vectorized lanes.
//
// Every loop walks a row in full vectors and finishes with one partial vector
// (loadu/store with a count), so each kernel writes its element math once, as a
// lambda over a vector; lanes past the end of a row are masked out of sums.
#pragma once

#include <ATen/cpu/vec/vec.h>

#include <cmath>
#include <cstdint>
#include <limits>

namespace oltr_losses {

template <typename scalar_t>
using Vec = at::vec::Vectorized<scalar_t>;

// f(offset, count) for consecutive chunks of [begin, end), count <= the vector width.
template <typename scalar_t, typename F>
inline void for_each_chunk(int64_t begin, int64_t end, const F& f) {
  constexpr int64_t width = Vec<scalar_t>::size();
  int64_t j = begin;
  for (; j + width <= end; j += width) {
    f(j, width);
  }
  if (j < end) {
    f(j, end - j);
  }
}

template <typename scalar_t>
inline Vec<scalar_t> load(const scalar_t* data, int64_t count) {
  return count == Vec<scalar_t>::size() ? Vec<scalar_t>::loadu(data) : Vec<scalar_t>::loadu(data, count);
}

// The lanes past ``count`` of a partial chunk replaced by ``fill`` (the identity of a reduction).
template <typename scalar_t>
inline Vec<scalar_t> keep_first(const Vec<scalar_t>& v, int64_t count, scalar_t fill) {
  return count == Vec<scalar_t>::size() ? v : Vec<scalar_t>::set(Vec<scalar_t>(fill), v, count);
}

template <typename scalar_t>
inline void store(const Vec<scalar_t>& v, scalar_t* data, int64_t count) {
  v.store(data, static_cast<int>(count));
}

// Sum of the lanes, added up in double so that a row's total does not depend on the lane order's rounding.
template <typename scalar_t>
inline double lane_sum(const Vec<scalar_t>& v) {
  scalar_t lanes[Vec<scalar_t>::size()];
  v.store(lanes);
  double total = 0.0;
  for (int64_t k = 0; k < Vec<scalar_t>::size(); ++k) {
    total += static_cast<double>(lanes[k]);
  }
  return total;
}

template <typename scalar_t>
inline scalar_t lane_max(const Vec<scalar_t>& v) {
  scalar_t lanes[Vec<scalar_t>::size()];
  v.store(lanes);
  scalar_t best = lanes[0];
  for (int64_t k = 1; k < Vec<scalar_t>::size(); ++k) {
    // NaN wins, so that a NaN logit makes the row's loss NaN as in torch's log_softmax.
    if (lanes[k] > best || std::isnan(lanes[k])) {
      best = lanes[k];
    }
  }
  return best;
}

template <typename scalar_t>
inline scalar_t row_max(const scalar_t* row, int64_t length) {
  const scalar_t lowest = -std::numeric_limits<scalar_t>::infinity();
  Vec<scalar_t> best(lowest);
  for_each_chunk<scalar_t>(0, length, [&](int64_t j, int64_t count) {
    best = at::vec::maximum(best, keep_first(load(row + j, count), count, lowest));
  });
  return lane_max(best);
}

// x ** n for an integer n >= 0 by repeated squaring (n is the same for every lane).
template <typename V>
inline V integer_power(V x, int64_t n) {
  V result(1);
  while (n) {
    if (n & 1) {
      result = result * x;
    }
    n >>= 1;
    if (n) {
      x = x * x;
    }
  }
  return result;
}

// log1p(e) for e in [0, 1] (the sigmoid kernel's e = exp(-|x|)), exact to float rounding.
// log1p(e) = 2 atanh(t) = 2 (t + t^3/3 + t^5/5 + ...), t = e / (2 + e) <= 1/3: seven terms
// leave a relative error under (1/9)^7 / 15 < 2^-24, in one division and a few FMAs where
// Sleef's general log1p costs about four times as much. Double keeps Sleef's (1 ulp).
inline Vec<float> log1p_unit(const Vec<float>& e) {
  using V = Vec<float>;
  const V t = e / (V(2.0f) + e);
  const V t2 = t * t;
  V p(1.0f / 13.0f);
  p = at::vec::fmadd(p, t2, V(1.0f / 11.0f));
  p = at::vec::fmadd(p, t2, V(1.0f / 9.0f));
  p = at::vec::fmadd(p, t2, V(1.0f / 7.0f));
  p = at::vec::fmadd(p, t2, V(1.0f / 5.0f));
  p = at::vec::fmadd(p, t2, V(1.0f / 3.0f));
  p = at::vec::fmadd(p, t2, V(1.0f));
  return (t + t) * p;
}

inline Vec<double> log1p_unit(const Vec<double>& e) {
  return e.log1p();
}

// Integer exponents up to this are computed by multiplication (as in losses/fast/focal_functions.py).
constexpr double kMaxIntegerPower = 16.0;

inline bool is_small_integer(double gamma) {
  return gamma >= 0.0 && gamma <= kMaxIntegerPower && std::floor(gamma) == gamma;
}

}  // namespace oltr_losses
