"""Per-concept benchmark runs: resumable fine-tunes, time to quality, speedups, medians.

Budgets (every one a flag of ``python -m experiments.bench run``): scratch fine-tunes for ``scratch_steps``
once per concept; its *final PSNR* is the mean of its evaluations in the last ``final_window``
of that budget, and the *target* is that minus ``tolerance_db`` (the same for every method,
scratch included). Every other method fine-tunes with the same recipe, data and data order
until it has reached the target and run at least ``min_fraction`` of the scratch budget, or
until ``cap_fraction`` of it ("not reached", with the PSNR it got). ``stop_at="cap"`` runs every
method to the cap (with ``cap_fraction=1`` the whole budget: full curves, at full cost).
Evaluations: step 0, dense early steps, every ``eval_every`` steps and at each fraction of the
budget in ``fractions``. Seconds are training wall seconds (evaluation excluded) plus the
method's initialisation cost (generation for the generated methods).

Time to quality: the first evaluation at or above the target, linearly interpolated with the
previous one (seconds and steps). Speedup = scratch's seconds / the method's. Concepts where
scratch's final PSNR does not beat the trivial outputs (input as output, mean target) by
``trivial_margin_db`` are reported apart and left out of the medians.

Resumable: one JSON per (concept, method) at ``OUT/runs/<concept>/<method>.json``, written
atomically and skipped when present with the same run key (config, zoo, generator, target).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from experiments.bench.artefacts import SHOW, generator_id, load_fid_features, machine_info, save_strip
from experiments.bench.curves import summarize, summarize_concept
from experiments.bench.methods import METHODS, SELECTION_PAIRS, BenchContext, methods_for
from weightinit.errors import WeightinitError
from weightinit.fileio import atomic_write_json
from weightinit.finetune import eval_schedule, final_psnr, predict, tracked_fine_tune
from weightinit.metrics import fid
from weightinit.recipe import RecipeConfig, trivial_baselines


@dataclass
class BenchConfig:
    scratch_steps: int = 4000
    cap_fraction: float = 0.5
    min_fraction: float = 0.05
    eval_every: int = 100
    tolerance_db: float = 0.5
    final_window: float = 0.1
    fractions: tuple[float, ...] = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
    trivial_margin_db: float = 3.0
    ddim_steps: int = 5
    seed: int = 0
    lora_lr: float | None = None  # None: the zoo's LoRA learning rate (concept_lr)
    stop_at: str = "target"
    #: RecipeConfig fields set for every method but scratch, e.g. ``{"lr_warmup_steps": 50}``: a
    #: fine-tune recipe for starts that are already good (scratch keeps the reference recipe).
    start_recipe: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.fractions = tuple(float(f) for f in self.fractions)
        if self.scratch_steps < 1 or self.eval_every < 1:
            raise WeightinitError("scratch steps and eval_every must be positive")
        if not 0 < self.cap_fraction <= 1 or not 0 <= self.min_fraction <= self.cap_fraction:
            raise WeightinitError(
                f"need 0 <= min fraction <= cap fraction <= 1, got {self.min_fraction}, {self.cap_fraction}"
            )
        if self.stop_at not in ("target", "cap"):
            raise WeightinitError(f"stop_at must be 'target' or 'cap', got {self.stop_at!r}")
        fixed = {"seed", "batch_size", "lr"}  # the benchmark's data order and batch; lr: lora_lr, per mode
        allowed = set(RecipeConfig.__dataclass_fields__) - fixed
        refused = sorted(set(self.start_recipe) - allowed)
        if refused:
            raise WeightinitError(
                f"start_recipe may set {', '.join(sorted(allowed))}, not {', '.join(refused)} "
                "(seed and batch size stay the benchmark's; LoRA-only's learning rate is lora_lr)"
            )

    @property
    def cap_steps(self) -> int:
        return max(1, round(self.cap_fraction * self.scratch_steps))

    @property
    def min_steps(self) -> int:
        return round(self.min_fraction * self.scratch_steps)

    def to_dict(self) -> dict:
        return asdict(self)


def spread(ids: list[str], count: int) -> list[str]:
    """At most ``count`` of ``ids``, every (len / count)-th in their order: a sample chosen by nobody."""
    return ids[:: max(1, len(ids) // count)][:count]


#: ``--quick``: 5 concepts, a short budget. A smoke test of the whole pipeline, not the benchmark.
QUICK = dict(scratch_steps=500, cap_fraction=0.25, min_fraction=0.05, eval_every=25)
QUICK_CONCEPTS = 5


def zoo_test_pairs(zoo, concept: str, photos=None):
    """``zoo.test_pairs``, for the callers written before it (benchmarks.pair_selection)."""
    return zoo.test_pairs(concept, photos)


def zoo_pairs(zoo, concept: str, photos=None):
    """A zoo concept's train pool and test pairs, exactly as the zoo made them, and its trivial PSNR."""
    record = zoo.record(concept)
    train = zoo.train_pairs(concept, photos=photos)
    test = zoo.test_pairs(concept, photos)
    trivial = record.trivial.get("trivial_psnr") if record.trivial else None
    return train, test, trivial if trivial is not None else trivial_baselines(*test)["trivial_psnr"]


class BenchRunner:
    """Runs (or resumes) the benchmark of ``methods`` on ``concepts`` into ``out``."""

    def __init__(
        self,
        zoo,
        out,
        config: BenchConfig,
        *,
        generator=None,
        concepts: list[str] | None = None,
        methods=None,
        mode: str = "merge",
        fid_weights=None,
        photos=None,
        progress: bool = True,
        log: Callable[[str], None] = print,
        shard: tuple[int, int] = (0, 1),
    ):

        self.config = config
        self.out = Path(out)
        self.ctx = BenchContext(zoo, generator, ddim_steps=config.ddim_steps, seed=config.seed, photos=photos)
        self.zoo = self.ctx.zoo
        heldout = self.zoo.ids("heldout")
        if concepts:
            unknown = [c for c in concepts if c not in self.zoo.manifest.concepts]
            if unknown:
                raise WeightinitError(
                    f"zoo {self.zoo.folder} has no concept(s) {unknown}; held-out ones: {', '.join(heldout) or 'none'}"
                )
            self.concepts = list(concepts)
        else:
            self.concepts = heldout
        if not self.concepts:
            raise WeightinitError(f"zoo {self.zoo.folder} has no held-out concepts to benchmark")
        self.methods = methods_for(mode, methods)
        if generator is None:
            skipped = [m.name for m in self.methods if m.needs_generator]
            self.methods = [m for m in self.methods if not m.needs_generator]
            if skipped:
                log(f"no generator: skipping {', '.join(skipped)}")
        self.mode = mode
        self.fid = (load_fid_features(fid_weights), str(fid_weights)) if fid_weights else None
        self.photos = photos
        self.progress, self.log = progress, log
        self.shard = shard

    # --- keys and files ----------------------------------------------------------------------
    def run_path(self, concept: str, method: str) -> Path:
        return self.out / "runs" / concept / f"{method}.json"

    def recipe(self, concept: str, method) -> object:
        zc = self.zoo.config
        seed = zc.data_seed(concept) + self.config.seed
        changes = {} if method.name == "scratch" else self.config.start_recipe
        if method.trains == "lora":
            return RecipeConfig(batch_size=zc.batch_size, seed=seed, lr=self.config.lora_lr or zc.concept_lr, **changes)
        return RecipeConfig(batch_size=zc.batch_size, seed=seed, **changes)

    def run_key(self, concept: str, method, target: float | None) -> dict:
        c = self.config
        key = {
            "concept": concept,
            "method": method.name,
            "zoo": self.zoo.manifest.base_sha256,
            "zoo_layout": self.zoo.layout.fingerprint,
            "recipe": self.recipe(concept, method).to_dict(),
            "scratch_steps": c.scratch_steps,
            "eval_every": c.eval_every,
            "fractions": list(c.fractions),
            "seed": c.seed,
            "fid": self.fid[1] if self.fid else None,
        }
        if method.name != "scratch":
            # mean, nearest and every generator depend on which training concepts the zoo holds
            key.update(zoo_train=self.zoo_train_digest)
            key.update(
                cap_fraction=c.cap_fraction,
                min_fraction=c.min_fraction,
                stop_at=c.stop_at,
                target=None if target is None else round(target, 4),
            )
        if method.needs_generator:
            key.update(generator=generator_id(self.ctx.generator_ref), ddim_steps=c.ddim_steps if method.ddim else 1)
        if method.sees_pairs:
            key.update(selection_pairs=SELECTION_PAIRS)
        return key

    @functools.cached_property
    def zoo_train_digest(self) -> str:
        """Digest of the zoo's training concepts (ids and file hashes): a run keyed on it is redone when they change."""
        ids = self.zoo.ids("train")
        text = json.dumps([[cid, self.zoo.record(cid).sha256] for cid in ids])
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def load_run(self, concept: str, method, key: dict) -> dict | None:
        path = self.run_path(concept, method.name)
        if not path.is_file():
            return None
        try:
            run = json.loads(path.read_text())
        except json.JSONDecodeError:
            return None
        return run if run.get("key") == key else None

    def pairs(self, concept: str):
        return zoo_pairs(self.zoo, concept, self.photos)

    # --- the run -----------------------------------------------------------------------------
    def run(self) -> dict:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(
            self.out / "meta.json",
            {
                "machine": machine_info(),
                "config": self.config.to_dict(),
                "mode": self.mode,
                "zoo": str(self.zoo.folder),
                "generator": str(self.ctx.generator_ref),
                "methods": [m.name for m in self.methods],
                "concepts": self.concepts,
            },
        )
        index, count = self.shard
        mine = self.concepts[index::count]
        progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            disable=not self.progress,
        )
        with progress:
            overall = progress.add_task("concepts", total=len(mine))
            steps_task = progress.add_task("", total=1)
            for concept in mine:
                self.run_concept(concept, progress, steps_task)
                progress.advance(overall)
        return self.results()

    def run_concept(self, concept: str, progress=None, task=None) -> dict:
        train, test, trivial = self.pairs(concept)
        runs = {}
        target = None
        for method in self.methods:
            key = self.run_key(concept, method, target)
            run = self.load_run(concept, method, key)
            if run is None:
                run = self.run_method(concept, method, key, train, test, target, progress, task)
                atomic_write_json(self.run_path(concept, method.name), run)
                self.log(
                    f"{concept} {method.name}: PSNR {run['curve'][0]['psnr']:.2f} -> {run['curve'][-1]['psnr']:.2f} dB "
                    f"in {run['curve'][-1]['step']} steps, {run['curve'][-1]['seconds']:.1f} s"
                )
            runs[method.name] = run
            if method.name == "scratch":
                target = final_psnr(run["curve"], self.config.final_window) - self.config.tolerance_db
        atomic_write_json(
            self.out / "runs" / concept / "concept.json",
            {"concept": concept, "trivial_psnr": trivial, "text": self.zoo.record(concept).text},
        )
        if not (self.out / "runs" / concept / "pairs.png").is_file():
            save_strip(self.out / "runs" / concept / "pairs.png", [test[0][:SHOW], test[1][:SHOW]])
        return runs

    def run_method(self, concept, method, key, train, test, target, progress=None, task=None) -> dict:
        c = self.config
        start = method.build(self.ctx, concept)
        model = start.model
        rel = self.ctx.rel_l2_to_oracle(model, concept) if method.measures_distance else None
        steps = c.scratch_steps if method.name == "scratch" else c.cap_steps
        shown0 = predict(model, test[0])[:SHOW]
        should_stop = None
        if method.name != "scratch" and c.stop_at == "target" and target is not None:

            def should_stop(curve):
                return curve[-1]["step"] >= c.min_steps and any(p["psnr"] >= target for p in curve)

        if progress is not None:
            progress.reset(task, total=steps, description=f"{concept} {method.name}")
        curve = tracked_fine_tune(
            model,
            train,
            test,
            steps,
            eval_schedule(c.scratch_steps, steps, c.eval_every, c.fractions),
            recipe=self.recipe(concept, method),
            params=start.params,
            time_offset=start.seconds,
            should_stop=should_stop,
            on_step=(lambda s: progress.update(task, completed=s)) if progress is not None else None,
        )
        preds = predict(model, test[0])
        save_strip(self.run_path(concept, method.name).with_suffix(".png"), [shown0, preds[:SHOW]])
        run = {
            "concept": concept,
            "method": method.name,
            "label": method.label,
            "trains": method.trains,
            "upper_bound": method.upper_bound,
            "key": key,
            "init_seconds": start.seconds,
            "info": start.info,
            "rel_l2_to_oracle": rel,
            "curve": curve,
            "stopped": "budget"
            if method.name == "scratch"
            else ("target" if should_stop and should_stop(curve) else "cap"),
            "threads": torch.get_num_threads(),
        }
        if self.fid is not None:
            run["fid"] = {
                "value": fid(test[1], preds, self.fid[0], 2048),
                "weights": self.fid[1],
                "images": len(preds),
                "note": "FID with the user's feature network on the concept's test pairs; comparable with published "
                "FID only with the real Inception-v3 weights and many more images",
            }
        return run

    # --- results -----------------------------------------------------------------------------
    def results(self) -> dict:
        return collect_results(self.out, self.config)


#: How a concept's runs are ordered when collected: the methods of both modes, then any other.
_ORDER = {m.name: i for i, m in enumerate(methods_for("both"))}


def collect_results(out: str | os.PathLike, config: BenchConfig | None = None) -> dict:
    """Every run under ``out/runs`` gathered, summarised per concept and overall."""
    out = Path(out)
    meta_path = out / "meta.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    if config is None:
        config = BenchConfig(**meta["config"]) if "config" in meta else BenchConfig()
    concepts, runs_all = {}, {}
    for folder in sorted(p for p in (out / "runs").glob("*") if p.is_dir()):
        info_path = folder / "concept.json"
        runs = {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json")) if p.name != "concept.json"}
        runs = dict(sorted(runs.items(), key=lambda kv: _ORDER.get(kv[0], len(_ORDER))))
        if "scratch" not in runs or not info_path.is_file():
            continue
        info = json.loads(info_path.read_text())
        concepts[folder.name] = summarize_concept(runs, info["trivial_psnr"], config) | {"text": info.get("text", "")}
        runs_all[folder.name] = runs

    found = {m for r in runs_all.values() for m in r}
    methods = [m for m in METHODS if m in found] + sorted(found - set(METHODS))
    return {
        "meta": meta,
        "config": config.to_dict(),
        "concepts": concepts,
        "summary": summarize(concepts, methods) if concepts else {},
        "runs": {
            c: {
                m: {
                    k: r[k]
                    for k in (
                        "label",
                        "trains",
                        "upper_bound",
                        "init_seconds",
                        "info",
                        "rel_l2_to_oracle",
                        "curve",
                        "stopped",
                    )
                }
                for m, r in rs.items()
            }
            for c, rs in runs_all.items()
        },
    }
