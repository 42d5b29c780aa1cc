// Schemas of the fused loss operators (torch.ops.oltr_losses.*); the CPU kernels are
// registered beside their code, the shape-only "fake" kernels for torch.compile in
// losses/native.py. Each returns the per-sample loss and, when asked, the gradient of
// each sample's loss with respect to its logits (a 0 x 0 tensor otherwise).
#include <torch/library.h>

TORCH_LIBRARY(oltr_losses, m) {
  m.def(
      "softmax_focal(Tensor logits, Tensor targets, float gamma_pos, float gamma_neg, float gamma_hc, "
      "float xi, float eps, bool with_grad) -> (Tensor loss, Tensor grad)");
  m.def(
      "sigmoid_focal(Tensor logits, Tensor targets, float gamma, Tensor? class_gamma, Tensor? pos_weight, "
      "Tensor? neg_weight, bool with_grad) -> (Tensor loss, Tensor grad)");
  m.def(
      "scale_rows_collect(Tensor grad, Tensor upstream, Tensor targets) "
      "-> (Tensor scaled, Tensor target_abs, Tensor off_target_abs_sums)");
}
