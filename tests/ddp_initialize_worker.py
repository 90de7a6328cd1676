"""Run under torchrun: every rank initialises its DDP-wrapped generator; checksums are compared."""

import hashlib
import sys

import torch
import torch.distributed as dist

from weightinit import initialize, plugins


def main() -> None:
    generator, arch = sys.argv[1], sys.argv[2]
    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    torch.manual_seed(100 + rank)  # ranks start from different random weights on purpose
    model = torch.nn.parallel.DistributedDataParallel(plugins.build_model(arch))
    initialize(model.module, "sketch to photo", generator=generator, seed=0)
    digest = hashlib.sha256()
    for p in model.module.parameters():
        digest.update(p.detach().numpy().tobytes())
    print(f"checksum rank {rank} {digest.hexdigest()}", flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
