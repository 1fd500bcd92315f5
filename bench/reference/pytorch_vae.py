"""The seed conv VAE (d=2, 28x28) in PyTorch: the reference throughput for `npm run bench`.

Usage: python3 pytorch_vae.py train|infer THREADS SAMPLES  -> prints JSON {stepMs: [...]}
Same architecture, batch and optimizer as ablate's bench/training-probe.ts. Tuned as
FACTS.md describes: every convolution on oneDNN, OpenBLAS on one thread, and glibc malloc
thresholds fixed by the caller (MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_ in the
environment). Debian's PyTorch 1.13 runs nn.ConvTranspose2d on its slow_conv_transpose2d
whatever the memory format (torch.profiler shows it), so the transposed convolutions here
are written as what they are, the input gradient of a convolution: forward and both
gradients then run on oneDNN (channels-last), 145 -> 101 ms for the 64->32 layer's forward
and backward at batch 128 on one thread. Gradients match nn.ConvTranspose2d (relative
error < 3e-6).
"""
import json
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.modules.utils import _pair

mode, threads, samples = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(threads)
torch.manual_seed(1)
import os
fmt = torch.contiguous_format if os.environ.get('PT_NCHW') else torch.channels_last


class _TransposedConv(torch.autograd.Function):
    """y = conv_transpose(x, w) + b as the input gradient of conv(., w), on oneDNN."""

    @staticmethod
    def forward(ctx, x, w, b, stride, padding, out_hw):
        ctx.save_for_backward(x, w)
        ctx.stride, ctx.padding = _pair(stride), _pair(padding)
        shape_only = x.new_empty(1).expand(x.shape[0], w.shape[1], *out_hw)
        y = torch.ops.aten.convolution_backward(
            x, shape_only, w, None, ctx.stride, ctx.padding, (1, 1), False, [0, 0], 1, (True, False, False))[0]
        return y + b.view(1, -1, 1, 1)

    @staticmethod
    def backward(ctx, gy):
        x, w = ctx.saved_tensors
        gx = F.conv2d(gy, w, None, ctx.stride, ctx.padding)
        gw = torch.ops.aten.convolution_backward(
            x, gy, w, None, ctx.stride, ctx.padding, (1, 1), False, [0, 0], 1, (False, True, False))[1]
        return gx, gw, gy.sum((0, 2, 3)), None, None, None


class OneDnnConvTranspose2d(nn.ConvTranspose2d):
    """nn.ConvTranspose2d's parameters and initialisation, computed by _TransposedConv."""

    def forward(self, x):
        h, w = x.shape[2:]
        out_hw = tuple((size - 1) * s - 2 * p + k + op for size, s, p, k, op in
                       zip((h, w), self.stride, self.padding, self.kernel_size, self.output_padding))
        return _TransposedConv.apply(x, self.weight, self.bias, self.stride, self.padding, out_hw)


class Vae(nn.Module):
    def __init__(self, d=2, hidden=128):
        super().__init__()
        self.c1 = nn.Conv2d(1, 32, 3, 2, 1)  # [N,32,14,14]
        self.c2 = nn.Conv2d(32, 64, 3, 2, 1)  # [N,64,7,7]
        self.h = nn.Linear(64 * 7 * 7, hidden)
        self.mu = nn.Linear(hidden, d)
        self.log_var = nn.Linear(hidden, d)
        self.g = nn.Linear(d, 64 * 7 * 7)
        self.t1 = OneDnnConvTranspose2d(64, 64, 3, 2, 1, output_padding=1)  # [N,64,14,14]
        self.t2 = OneDnnConvTranspose2d(64, 32, 3, 2, 1, output_padding=1)  # [N,32,28,28]
        self.t3 = OneDnnConvTranspose2d(32, 1, 3, 1, 1)  # logits [N,1,28,28]

    def encode(self, x):
        h = F.relu(self.c2(F.relu(self.c1(x))))
        h = F.relu(self.h(h.flatten(1)))
        return self.mu(h), self.log_var(h)

    def decode(self, z):
        g = F.relu(self.g(z)).view(-1, 64, 7, 7).contiguous(memory_format=fmt)
        return self.t3(F.relu(self.t2(F.relu(self.t1(g)))))


model = Vae().to(memory_format=fmt)
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)


def timed(run):
    for _ in range(2):
        run()
    out = []
    for _ in range(samples):
        start = time.perf_counter()
        run()
        out.append((time.perf_counter() - start) * 1000)
    return out


if mode == 'train':
    x = torch.rand(128, 1, 28, 28).contiguous(memory_format=fmt)

    def step():
        mu, log_var = model.encode(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * log_var)
        bce = F.binary_cross_entropy_with_logits(model.decode(z), x, reduction='none').sum((1, 2, 3))
        kl = -0.5 * (1 + log_var - mu.pow(2) - log_var.exp()).sum(1)
        loss = (bce + kl).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        loss.item()

    print(json.dumps({'batch': 128, 'stepMs': timed(step)}))
else:
    x = torch.rand(500, 1, 28, 28).contiguous(memory_format=fmt)

    def encode_all():
        with torch.no_grad():
            for _ in range(20):
                model.encode(x)[0].sum().item()

    print(json.dumps({'batch': 10000, 'stepMs': timed(encode_all)}))
