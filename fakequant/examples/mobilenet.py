"""A small MobileNetV2-style network for tiny images (8x8 digits), written for the eager QAT workflow:
QuantStub / DeQuantStub, FloatFunctional residual adds, ReLU (fusable), and fuse_model()."""
from torch import nn

from ..quantization import DeQuantStub, FloatFunctional, QuantStub, fuse_modules, fuse_modules_qat


class ConvBNReLU(nn.Sequential):
    def __init__(self, cin, cout, kernel_size=3, stride=1, groups=1):
        super().__init__(nn.Conv2d(cin, cout, kernel_size, stride, (kernel_size - 1) // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU())


class InvertedResidual(nn.Module):
    """1x1 expansion -> 3x3 depthwise -> 1x1 linear projection; residual add when shapes allow."""

    def __init__(self, cin, cout, stride, expand_ratio):
        super().__init__()
        hidden = cin * expand_ratio
        layers = [ConvBNReLU(cin, hidden, 1)] if expand_ratio != 1 else []
        layers += [ConvBNReLU(hidden, hidden, 3, stride, groups=hidden), nn.Conv2d(hidden, cout, 1, bias=False),
                   nn.BatchNorm2d(cout)]
        self.conv = nn.Sequential(*layers)
        self.use_res_connect = stride == 1 and cin == cout
        self.skip_add = FloatFunctional()

    def forward(self, x):
        if self.use_res_connect:
            return self.skip_add.add(x, self.conv(x))
        return self.conv(x)


class TinyMobileNetV2(nn.Module):
    """Stem, five inverted residual blocks (two stride-2: 8x8 -> 2x2), 1x1 head, global average pool, linear
    classifier; about 9k parameters (MobileNetV2's layout at a width that fits 8x8 digits)."""

    # (expand_ratio, channels, stride) per block
    BLOCKS = ((1, 8, 1), (4, 12, 2), (4, 12, 1), (4, 16, 2), (4, 16, 1))

    def __init__(self, num_classes=10, in_channels=1, stem_channels=8, head_channels=32, dropout=0.1):
        super().__init__()
        layers = [ConvBNReLU(in_channels, stem_channels, 3, 1)]
        cin = stem_channels
        for expand, cout, stride in self.BLOCKS:
            layers.append(InvertedResidual(cin, cout, stride, expand))
            cin = cout
        layers.append(ConvBNReLU(cin, head_channels, 1))
        self.quant = QuantStub()
        self.features = nn.Sequential(*layers)
        self.pool = FloatFunctional()  # global average pool with its own qparams (see FloatFunctional.mean)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(head_channels, num_classes))
        self.dequant = DeQuantStub()

    def forward(self, x):
        x = self.features(self.quant(x))
        return self.dequant(self.classifier(self.pool.mean(x, (2, 3))))

    def fuse_model(self, is_qat=True):
        """conv+bn+relu and conv+bn (projections) fused in place; QAT fusion keeps BN for folding."""
        fuse = fuse_modules_qat if is_qat else fuse_modules
        for m in self.modules():
            if type(m) is ConvBNReLU:
                fuse(m, ["0", "1", "2"], inplace=True)
            elif type(m) is InvertedResidual:
                last = len(m.conv) - 2
                fuse(m.conv, [str(last), str(last + 1)], inplace=True)
