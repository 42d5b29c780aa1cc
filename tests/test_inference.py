"""The vectorised centroid pass and logit collection, single process, against plain loops."""

import torch

from oltr.engine.distributed import DistContext
from oltr.engine.inference import collect_logits, compute_centroids


class Features(torch.nn.Module):
    """A fixed feature map with BatchNorm, to check the pass runs in eval mode."""

    def __init__(self):
        super().__init__()
        self.norm = torch.nn.BatchNorm1d(6)
        self.norm.running_mean.fill_(0.5)

    def forward(self, images):
        return self.norm(images.flatten(1)) * 3.0, None


def loader_of(images, labels, batch_size=4):
    dataset = torch.utils.data.TensorDataset(images, labels, torch.arange(len(labels)))
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size)


def test_centroids_equal_a_per_sample_loop():
    torch.manual_seed(0)
    images = torch.randn(11, 2, 3)
    labels = torch.tensor([0, 2, 2, 1, 0, 2, 1, 1, 0, 2, 2])  # class 3 has no sample
    model = Features().train()
    centroids = compute_centroids(model, loader_of(images, labels), num_classes=4, ctx=DistContext())
    assert not model.training  # centroids come from the eval-mode (running-stat) features
    sums, counts = torch.zeros(4, 6, dtype=torch.float64), torch.zeros(4)
    for image, label in zip(images, labels):
        sums[label] += ((image.flatten().double() - 0.5) / (1 + 1e-5) ** 0.5) * 3.0
        counts[label] += 1
    expected = sums / counts.clamp(min=1).unsqueeze(1).double()
    torch.testing.assert_close(centroids, expected.float())
    assert torch.equal(centroids[3], torch.zeros(6))


class Classifier(torch.nn.Module):
    def forward(self, images, centroids=None):
        flat = images.flatten(1)
        return flat @ centroids.t(), flat


def test_collect_logits_keeps_dataset_order_and_uses_the_centroids():
    images = torch.randn(7, 2, 3)
    labels = torch.arange(7) % 3
    centroids = torch.randn(3, 6)
    logits, got_labels, indices = collect_logits(Classifier(), loader_of(images, labels, 3), centroids, DistContext())
    torch.testing.assert_close(logits, images.flatten(1) @ centroids.t())
    assert torch.equal(got_labels, labels) and torch.equal(indices, torch.arange(7))
