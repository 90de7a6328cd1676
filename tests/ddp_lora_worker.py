"""Run under torchrun (2 gloo ranks): LoRA mode and DDP.

1. The reference flow: optimizer built, netG wrapped in DDP, then the line on ``netG.module``:
   refused with the fix, the network unchanged.
2. The fix: the line before the wrap (optimizer passed), then DDP; one step on each rank's own
   batch; the LoRA parameters moved and are identical on both ranks.
"""

import sys

import torch
import torch.distributed as dist
from ddp_helpers import checksum, say

from weightinit import initialize, plugins
from weightinit.errors import WeightinitError


def main() -> None:
    generator, arch = sys.argv[1], sys.argv[2]
    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    DDP = torch.nn.parallel.DistributedDataParallel

    torch.manual_seed(100 + rank)
    net = plugins.build_model(arch)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    wrapped = DDP(net)
    before = checksum(wrapped.module)
    try:
        initialize(wrapped.module, "sketch to photo", generator=generator, mode="lora", optimizer=opt)
        say(f"accepted rank {rank}")
    except WeightinitError as exc:
        same = "unchanged" if checksum(wrapped.module) == before else "CHANGED"
        say(f"refused rank {rank} {same}: {exc}")

    torch.manual_seed(200 + rank)
    net = plugins.build_model(arch)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    initialize(net, "sketch to photo", generator=generator, mode="lora", optimizer=opt, seed=0)
    lora = [p.detach().clone() for n, p in net.named_parameters() if ".lora_" in n]
    wrapped = DDP(net)
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(rank)) * 2 - 1  # each rank its own batch
    loss = (wrapped(x) - x.flip(-1)).abs().mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    after = [p.detach() for n, p in net.named_parameters() if ".lora_" in n]
    say(f"moved rank {rank} {all(not torch.equal(a, b) for a, b in zip(after, lora))}")
    say(f"trained rank {rank} {checksum(net)}")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
