"""Worker of test_distributed.py, started twice by torchrun: a few data-parallel STDB steps, weights saved."""

import sys
from pathlib import Path

import numpy as np
import torch

from bioSNN.models.vgg import vgg
from bioSNN.nn import distributed as dist
from bioSNN.nn.convert import to_snn
from bioSNN.nn.train import batches, train_epoch

out = Path(sys.argv[1])
rank, world = dist.setup()
torch.set_num_threads(1)
torch.manual_seed(100 + rank)  # different initial weights per rank: DDP must broadcast rank 0's
net = vgg("vgg5", (1, 8, 8), n_classes=3, width=0.125, hidden=16, dropout=0.0)
g = torch.Generator().manual_seed(0)
x = torch.rand(64, 1, 8, 8, generator=g)
y = torch.randint(0, 3, (64,), generator=g)
to_snn(net, [x[:16]], time_steps=4, scale=0.5, encoder="direct")
net.set_neurons(surrogate="stdb")
model = dist.wrap(net)
np.save(out / f"initial_rank{rank}.npy", net.nodes[0].weight.detach().numpy())
opt = torch.optim.SGD(net.parameters(), lr=0.5)
for epoch in range(2):
    stats = train_epoch(model, batches(x, y, 8, shuffle=True, seed=epoch, rank=rank, world=world), opt, 4, "direct")
flat = np.concatenate([p.detach().numpy().ravel() for p in net.parameters()])
np.save(out / f"rank{rank}.npy", flat)
np.save(out / f"samples_rank{rank}.npy", np.array([stats["samples"], world]))
dist.barrier()
dist.teardown()
