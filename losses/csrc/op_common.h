// What every fused loss op does before its kernel: check its logits and targets, and size
// its parallel tasks.
#pragma once

#include <ATen/core/Tensor.h>

#include <algorithm>
#include <cstdint>

namespace oltr_losses {

// Elements per parallel task: ATen's own at::internal::GRAIN_SIZE (TensorIterator.h, not included here).
constexpr int64_t kGrainSize = 32768;

// Whole rows per parallel task, about kGrainSize elements each.
inline int64_t rows_per_task(int64_t row_length) {
  return std::max<int64_t>(1, kGrainSize / std::max<int64_t>(1, row_length));
}

// (B, C) logits and (B,) int64 targets in [0, C); ``op`` names the operator in errors.
inline void check_logits_and_targets(const at::Tensor& logits, const at::Tensor& targets, const char* op) {
  TORCH_CHECK(logits.dim() == 2, op, ": logits must be (batch, classes), got ", logits.sizes());
  TORCH_CHECK(targets.dim() == 1 && targets.size(0) == logits.size(0), op, ": targets must have shape (",
              logits.size(0), ",), got ", targets.sizes());
  TORCH_CHECK(targets.scalar_type() == at::kLong, op, ": targets must be int64");
  const at::Tensor y = targets.contiguous();
  const int64_t* data = y.const_data_ptr<int64_t>();
  for (int64_t i = 0; i < y.size(0); ++i) {  // an out-of-range index would read or write past the row
    TORCH_CHECK(data[i] >= 0 && data[i] < logits.size(1), op, ": target ", data[i], " out of range [0, ",
                logits.size(1), ")");
  }
}

}  // namespace oltr_losses
