"""The schedulers are built from the generator's saved config by their constructor, not by
``from_config`` (which imports every diffusers scheduler to look up compatible classes): the
configs must be the ones ``from_config`` gives."""

from __future__ import annotations

import inspect
import json
import warnings

from diffusers import DDIMScheduler, DDPMScheduler

from weightinit.generator.sampling import scheduler_from_config
from weightinit.generators import bundled_generator_path


def _public(config, scheduler_class) -> dict:
    # from_config also keeps keys the class does not take (DDPM's variance_type on a DDIM); unused
    accepted = inspect.signature(scheduler_class.__init__).parameters
    return {k: v for k, v in dict(config).items() if k in accepted}


def test_scheduler_from_config_matches_diffusers_from_config():
    saved = json.loads((bundled_generator_path() / "scheduler" / "scheduler_config.json").read_text())
    ddpm = scheduler_from_config(DDPMScheduler, saved)
    assert _public(ddpm.config, DDPMScheduler) == _public(DDPMScheduler.from_config(saved).config, DDPMScheduler)

    overrides = {"timestep_spacing": "trailing", "clip_sample": False, "set_alpha_to_one": True}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # from_config warns about the DDPM keys DDIM does not take
        expected = DDIMScheduler.from_config(ddpm.config, **overrides)
    ddim = scheduler_from_config(DDIMScheduler, ddpm.config, **overrides)
    assert _public(ddim.config, DDIMScheduler) == _public(expected.config, DDIMScheduler)
    assert ddim.config.timestep_spacing == "trailing"
    ddim.set_timesteps(4)
    expected.set_timesteps(4)
    assert ddim.timesteps.tolist() == expected.timesteps.tolist()
    assert ddim.alphas_cumprod.equal(expected.alphas_cumprod)
