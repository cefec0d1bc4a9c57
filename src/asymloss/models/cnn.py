"""The paper's small convolutional networks (docs/protocols.md, 'Networks') and an MLP."""
from __future__ import annotations

from torch import nn

__all__ = ["CNN4", "CNN8", "MLP"]


def _conv_bn_relu(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


class CNN4(nn.Module):
    """The paper's 4-layer MNIST network.

    [conv3×3 32, BN, ReLU, maxpool2], [conv3×3 64, BN, ReLU, maxpool2], FC 64·(H/4)·(W/4)→128,
    BN1d, ReLU, FC 128→K. Input (N, C, H, W), output logits (N, K); for 28×28 the first FC is
    3136→128 as in the paper.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1, image_size: int = 28):
        super().__init__()
        s = image_size // 4
        self.features = nn.Sequential(
            *_conv_bn_relu(in_channels, 32), nn.MaxPool2d(2),
            *_conv_bn_relu(32, 64), nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(64 * s * s, 128), nn.BatchNorm1d(128), nn.ReLU(inplace=True),
            nn.Linear(128, num_classes),
        )

    def forward(self, x):
        return self.classifier(self.features(x))


class CNN8(nn.Module):
    """The paper's 8-layer CIFAR-10 network.

    [conv 64, BN, ReLU]×2, maxpool, [conv 128 …]×2, maxpool, [conv 196 …]×2, maxpool,
    FC 196·(H/8)·(W/8)→256 (3136 for 32×32), BN1d, ReLU, FC 256→K.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 3, image_size: int = 32):
        super().__init__()
        s = image_size // 8
        self.features = nn.Sequential(
            *_conv_bn_relu(in_channels, 64), *_conv_bn_relu(64, 64), nn.MaxPool2d(2),
            *_conv_bn_relu(64, 128), *_conv_bn_relu(128, 128), nn.MaxPool2d(2),
            *_conv_bn_relu(128, 196), *_conv_bn_relu(196, 196), nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(196 * s * s, 256), nn.BatchNorm1d(256), nn.ReLU(inplace=True),
            nn.Linear(256, num_classes),
        )

    def forward(self, x):
        return self.classifier(self.features(x))


class MLP(nn.Module):
    """A small multi-layer perceptron on flattened images: in → hidden (×depth, BN, ReLU) → K."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1, image_size: int = 8,
                 hidden: int = 256, depth: int = 2):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_channels * image_size * image_size
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True)]
            width = hidden
        layers.append(nn.Linear(width, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)
