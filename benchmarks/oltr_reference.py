"""OLTR's own stage-1 data pipeline and training loop, restated in plain PyTorch for the benchmarks.

Written from reading the original code (zhmiao/OpenLongTailRecognition-OLTR: data/dataloader.py,
run_networks.py, models/DotProductClassifier.py); nothing here imports oltr's data or engine code.
What it reproduces, per piece:

* data: ``LT_Dataset`` - a split file of ``path label`` lines (a path starting with ``/`` is
  appended to the root as a string, any other joined to it), each image opened from a file object
  with PIL and ``convert('RGB')``, returned as ``(tensor, label, path)``;
* transform: ``data_transforms['train']`` - RandomResizedCrop(224), RandomHorizontalFlip,
  ColorJitter(0.4, 0.4, 0.4, 0), ToTensor, Normalize(ImageNet mean/std);
* loader: ``DataLoader(shuffle=True, num_workers=...)``, no pin_memory, no sampler (stage 1);
* networks: each of feat_model and classifier wrapped in ``nn.DataParallel`` and moved to the
  device, as ``init_models`` does, but on the one benchmarked device (see ``on_device``).
  The feature model is **oltr's own ResNet-10**
  (``oltr.models.build_feature_model('resnet10', use_fc=False)``, the same trunk as OLTR's
  ResNet10Feature: BasicBlock x [1, 1, 1, 1], 512-d pooled features) so both sides run the
  identical network; the dot-product classifier (one ``nn.Linear``) is restated here;
* optimisation: one ``optim.SGD`` over the two networks' parameter groups (lr, momentum,
  weight decay; no Nesterov), the model optimizer of ``init_optimizers``; stage 1 has no
  FeatureLoss and so no criterion optimizer;
* the step (``train``): inputs and labels ``.to(device)``; feat_model -> classifier; loss =
  CrossEntropyLoss x weight; zero_grad, backward, step; every ``display_step`` steps (step 0
  included) ``loss.item()`` and the minibatch accuracy (``torch.max`` + a ``.item()``) for the log
  line; an epoch stops at ``len(dataset) // batch_size`` steps; ``torch.cuda.empty_cache()`` and
  ``train()`` at each epoch's start. fp32, contiguous memory format, no autocast, no compile.
"""

import os

import torch
import torch.nn as nn
import torch.optim as optim
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


def train_transform(input_size=224):
    """OLTR's data_transforms['train'] (input_size 224 there)."""
    return transforms.Compose(
        [
            transforms.RandomResizedCrop(input_size),
            transforms.RandomHorizontalFlip(),
            transforms.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4, hue=0),
            transforms.ToTensor(),
            transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )


class LTDataset(Dataset):
    """OLTR's LT_Dataset: ``(transformed image, label, path)`` per line of a split file."""

    def __init__(self, root, txt, transform=None):
        self.img_path, self.labels, self.transform = [], [], transform
        with open(txt) as handle:
            for line in handle:
                fields = line.split()
                if not fields:
                    continue
                self.img_path.append(root + fields[0] if line.startswith("/") else os.path.join(root, fields[0]))
                self.labels.append(int(fields[1]))

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, index):
        path = self.img_path[index]
        with open(path, "rb") as handle:
            sample = Image.open(handle).convert("RGB")
        if self.transform is not None:
            sample = self.transform(sample)
        return sample, self.labels[index], path


class DotProductClassifier(nn.Module):
    """OLTR's DotProductClassifier: a linear layer; forward(x, centroids) -> (logits, x)."""

    def __init__(self, num_classes=1000, feat_dim=512):
        super().__init__()
        self.fc = nn.Linear(feat_dim, num_classes)

    def forward(self, x, *args):
        return self.fc(x), x


def feature_model(input_size=224):
    """ResNet-10 without the fc head: oltr's implementation, for compute identical to our trainer's."""
    from oltr.models import build_feature_model

    return build_feature_model("resnet10", use_modulatedatt=False, use_fc=False, input_size=input_size)


def on_device(module, device):
    """OLTR's ``nn.DataParallel(module).to(device)``, held to the one device benchmarked.

    OLTR spread each batch over every visible GPU; here DataParallel gets only ``device`` (with one
    device it calls the module directly, as it does on a machine without CUDA, where the wrapper is
    left out: DataParallel with no device ids cannot be built once CUDA is present).
    """
    if device.type != "cuda":
        return module.to(device)
    index = device.index if device.index is not None else torch.cuda.current_device()
    return nn.DataParallel(module.to(device), device_ids=[index])


class OriginalStage1:
    """OLTR's stage-1 training of one epoch at a time: ``epoch()`` trains ``len(dataset) // batch`` steps.

    ``loader`` may be replaced by any iterable of ``(inputs, labels, paths)`` (the GPU check wraps
    it to time the waits); ``displayed`` keeps the (step, loss, accuracy) values the log would print.
    """

    def __init__(
        self,
        root,
        train_txt,
        device,
        batch_size=128,
        num_workers=4,
        input_size=224,
        num_classes=1000,
        lr=(0.1, 0.1),
        momentum=0.9,
        weight_decay=5e-4,
        display_step=10,
        loss_weight=1.0,
        initial_state=None,
    ):
        self.device = torch.device(device)
        dataset = LTDataset(root, train_txt, train_transform(input_size))
        self.loader = DataLoader(dataset=dataset, batch_size=batch_size, shuffle=True, num_workers=num_workers)
        self.epoch_steps = int(len(dataset) / batch_size)
        self.display_step = display_step
        self.loss_weight = loss_weight
        feat, classifier = feature_model(input_size), DotProductClassifier(num_classes, 512)
        if initial_state is not None:  # {"feat_model": state_dict, "classifier": state_dict}
            feat.load_state_dict(initial_state["feat_model"])
            classifier.load_state_dict(initial_state["classifier"])
        self.networks = {"feat_model": on_device(feat, self.device), "classifier": on_device(classifier, self.device)}
        groups = [
            {"params": net.parameters(), "lr": rate, "momentum": momentum, "weight_decay": weight_decay}
            for net, rate in zip(self.networks.values(), lr)
        ]
        self.model_optimizer = optim.SGD(groups)
        self.criterion = nn.CrossEntropyLoss().to(self.device)
        self.displayed = []
        self.steps_done = 0

    def epoch(self):
        for model in self.networks.values():
            model.train()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        for step, (inputs, labels, _) in enumerate(self.loader):
            if step == self.epoch_steps:
                break
            inputs, labels = inputs.to(self.device), labels.to(self.device)
            with torch.set_grad_enabled(True):
                features, _ = self.networks["feat_model"](inputs)
                logits, _ = self.networks["classifier"](features, None)
                loss = self.criterion(logits, labels) * self.loss_weight
                self.model_optimizer.zero_grad()
                loss.backward()
                self.model_optimizer.step()
                if step % self.display_step == 0:
                    _, preds = torch.max(logits, 1)
                    accuracy = (preds == labels).sum().item() / len(labels)
                    self.displayed.append((self.steps_done, loss.item(), accuracy))
            self.steps_done += 1
