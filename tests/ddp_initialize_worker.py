"""Run under torchrun: every rank initialises its DDP-wrapped generator; checksums are compared.

Then again with ``pairs=``, each rank holding pairs that another training concept made: alone,
each rank would choose (or generate from) its own concept; what decides the start (scores,
features, gradients) is averaged over the ranks, so they agree.
"""

import sys

import torch
import torch.distributed as dist
from ddp_helpers import checksum, say

from weightinit import initialize, plugins


def pairs_of_concept(generator: str, arch: str, index: int):
    """Random inputs and what the base carrying training concept ``index``'s weights makes of them."""
    from weightinit.apply import apply_tensors
    from weightinit.codec import BlockCodec
    from weightinit.initialization import load_generator
    from weightinit.recipe import batch_statistics

    gen = load_generator(generator)
    name = f"concept {gen.prior.concept_ids[index]}"
    blocks = dict(gen.candidate_blocks("sketch to photo"))[name]
    factors = {k: v.float() for k, v in BlockCodec(gen.layout).decode(blocks, copy=True).items()}
    model = plugins.build_model(arch)
    model.load_state_dict(gen.base_state)
    apply_tensors(model, gen.full_weights(factors), plugins.get_adapter("pix2pix"))
    inputs = torch.rand(4, 3, 64, 64, generator=torch.Generator().manual_seed(index)) * 2 - 1
    with torch.no_grad(), batch_statistics(model):
        return inputs, model(inputs)


def main() -> None:
    generator, arch = sys.argv[1], sys.argv[2]
    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    torch.manual_seed(100 + rank)  # ranks start from different random weights on purpose
    model = torch.nn.parallel.DistributedDataParallel(plugins.build_model(arch))
    initialize(model.module, "sketch to photo", generator=generator, seed=0)
    say(f"checksum rank {rank} {checksum(model.module)}")
    report = initialize(
        model.module, "sketch to photo", generator=generator, seed=0, pairs=pairs_of_concept(generator, arch, rank)
    )
    say(f"chosen rank {rank} {report.chosen!r} {checksum(model.module)}")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
