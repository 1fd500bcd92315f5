"""The seed conv VAE (d=2, 28x28) in PyTorch: the reference throughput for `npm run bench`.

Usage: python3 pytorch_vae.py train|infer THREADS SAMPLES  -> prints JSON {stepMs: [...]}
Same architecture, batch and optimizer as ablate's bench/training-probe.ts. Tuned as
FACTS.md describes: channels-last tensors (so every convolution, the transposed ones too,
runs on oneDNN), OpenBLAS on one thread, and glibc malloc thresholds fixed by the caller
(MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_ in the environment).
"""
import json
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

mode, threads, samples = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(threads)
torch.manual_seed(1)
import os
fmt = torch.contiguous_format if os.environ.get('PT_NCHW') else torch.channels_last


class Vae(nn.Module):
    def __init__(self, d=2, hidden=128):
        super().__init__()
        self.c1 = nn.Conv2d(1, 32, 3, 2, 1)  # [N,32,14,14]
        self.c2 = nn.Conv2d(32, 64, 3, 2, 1)  # [N,64,7,7]
        self.h = nn.Linear(64 * 7 * 7, hidden)
        self.mu = nn.Linear(hidden, d)
        self.log_var = nn.Linear(hidden, d)
        self.g = nn.Linear(d, 64 * 7 * 7)
        self.t1 = nn.ConvTranspose2d(64, 64, 3, 2, 1, output_padding=1)  # [N,64,14,14]
        self.t2 = nn.ConvTranspose2d(64, 32, 3, 2, 1, output_padding=1)  # [N,32,28,28]
        self.t3 = nn.ConvTranspose2d(32, 1, 3, 1, 1)  # logits [N,1,28,28]

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
