"""Building a zoo: one base generator, then one aligned weight set per concept.

Resumable and safe to kill at any point: every file is written atomically, a concept counts as
done only when its record exists and its file's sha256 matches, and anything else is rebuilt.
Many processes build one zoo (``torchrun --nproc_per_node N -m weightinit zoo build ...``, or
``accelerate launch --multi_gpu ...`` on GPUs):
concepts are dealt round-robin to processes, so none is trained twice, and process 0 trains
the base first and writes the manifest. Each process holds a lock on its share, so a second
build on the same folder fails at once instead of writing beside the first.

Where it runs is a runtime choice, not part of the zoo (``build.json`` never records it): each
process trains on its own device (:func:`weightinit.recipe.select_device`: CUDA device
``LOCAL_RANK % device_count`` when a GPU is visible, so several processes share one GPU) with
bf16 autocast on CUDA by default. Models are built and seeded on the CPU and then moved, and
every file is written from CPU tensors, so the folder format is the same on any device. At the
end process 0 logs the build's measured throughput (concepts per minute, the device) and appends
it to ``throughput.json`` in the zoo folder.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict
from pathlib import Path

import torch

from weightinit import plugins
from weightinit._version import __version__
from weightinit.errors import WeightinitError
from weightinit.fileio import atomic_write_json, read_safetensors, save_safetensors, sha256_file
from weightinit.lora import inject_lora
from weightinit.pairs import zoo_pair_source
from weightinit.recipe import (
    RecipeConfig,
    device_name,
    evaluate,
    fine_tune,
    resolve_mixed_precision,
    select_device,
    trivial_baselines,
)
from weightinit.zoo.manifest import BASE_NAME, ConceptRecord, ZooConfig, ZooManifest
from weightinit.zoo.weights import ZooWeights, concept_layout

BUILD_CONFIG_NAME = "build.json"
#: Measured throughput of each build run (process 0 appends one entry per run that built concepts).
THROUGHPUT_NAME = "throughput.json"


def concept_seed(concept_id: str, seed: int) -> int:
    """A seed per concept that is the same on every machine (the base's mixture uses these)."""
    return (int(hashlib.sha256(concept_id.encode()).hexdigest()[:8], 16) + seed) % (2**31)


@contextlib.contextmanager
def build_lock(folder: Path, rank: int) -> Iterator[None]:
    """An exclusive lock on this process's share of the zoo; released even on kill -9."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f".lock.{rank}"
    handle = open(path, "a+")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise WeightinitError(
            f"another build is writing {folder} (lock {path.name} is held); wait for it or use another folder"
        ) from None
    try:
        yield
    finally:
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        handle.close()


def interleave_splits(train: Sequence, heldout: Sequence) -> list:
    """Held-out concepts spread evenly among training ones, so a partial zoo has both."""
    out, h = [], 0
    for i, c in enumerate(train):
        out.append(c)
        while h < len(heldout) and (h + 1) * len(train) <= (i + 1) * len(heldout):
            out.append(heldout[h])
            h += 1
    out.extend(heldout[h:])
    return out


class ZooBuilder:
    """Builds (or resumes) one zoo folder."""

    def __init__(
        self,
        folder: str | os.PathLike,
        config: ZooConfig,
        concepts: Sequence,
        *,
        rank: int = 0,
        world_size: int = 1,
        barrier: Callable[[], None] = lambda: None,
        log: Callable[[str], None] = print,
        photos=None,
        device: str | torch.device = "cpu",
        mixed_precision: str = "auto",
        editor=None,
    ):
        self.folder = Path(folder)
        self.config = config
        self.concepts = list(concepts)
        self.rank, self.world_size, self.barrier, self.log = rank, world_size, barrier, log
        self.adapter = plugins.adapter_for_arch(config.arch)
        self.photos = photos
        #: With ``config.pairs == "editor"``: a loaded pipeline (else ``config.editor`` loads once, on ``device``).
        self.editor = editor
        #: Runtime only (never in build.json): where this process trains and under which autocast.
        self.device = device if isinstance(device, torch.device) else select_device(device, rank)
        self.mixed_precision = resolve_mixed_precision(mixed_precision, self.device)

    # --- models ----------------------------------------------------------------------------
    def new_model(self) -> torch.nn.Module:
        """The network before any training: built and initialised as its own training code does
        from scratch (the adapter's ``reset_parameters``), under the zoo's seed."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.config.seed)
            return self.adapter.reset_parameters(plugins.build_model(self.config.arch))

    def pairs(self, concept, n: int, split: str, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        source = zoo_pair_source(self.config, concept, self.photos, editor=self.editor, device=str(self.device))
        return source.sample(n, split=split, seed=seed)

    # --- the build -------------------------------------------------------------------------
    def check_config(self) -> None:
        """A resumed build must use the zoo's own config."""
        path = self.folder / BUILD_CONFIG_NAME
        if path.is_file():
            # Fields added since the folder was started read as their defaults.
            stored = ZooConfig.from_dict(json.loads(path.read_text())).to_dict()
            if stored != self.config.to_dict():
                diff = sorted(
                    k
                    for k in stored.keys() | self.config.to_dict().keys()
                    if stored.get(k) != self.config.to_dict().get(k)
                )
                raise WeightinitError(
                    f"{self.folder} was started with another zoo config (differs in {diff}); resume with the same "
                    "options or use a new folder"
                )
        elif self.rank == 0:
            atomic_write_json(path, self.config.to_dict())

    def run(self) -> ZooManifest | None:
        with build_lock(self.folder, self.rank):
            if self.rank == 0:
                self.check_config()
                self.remove_stale_temporaries()
                self.ensure_base()
            self.barrier()
            if self.rank != 0:
                self.check_config()
            mine = self.concepts[self.rank :: self.world_size]
            todo = [c for c in mine if not self.is_done(c.id)]
            self.log(
                f"[rank {self.rank}] {len(mine) - len(todo)} of {len(mine)} concepts already built; {len(todo)} to go"
            )
            done_before = sum(self.is_done(c.id) for c in self.concepts) if self.rank == 0 else 0
            start = time.perf_counter()
            self.train_concepts(todo)
            self.barrier()
            if self.rank == 0:
                seconds = time.perf_counter() - start
                manifest = self.write_manifest()
                self.record_throughput(sum(self.is_done(c.id) for c in self.concepts) - done_before, seconds)
                return manifest
            return None

    def record_throughput(self, built: int, seconds: float) -> dict | None:
        """Log and append to ``throughput.json`` what this run measured (process 0, after the barrier).

        ``concepts_per_minute`` counts the concepts every process of this run built, over the wall
        time from the end of the base to the last process's last concept; the base is not in it.
        """
        if built <= 0:
            return None
        cfg = self.config
        per_device = self.world_size
        if self.device.type == "cuda":
            per_device = max(1, math.ceil(self.world_size / max(torch.cuda.device_count(), 1)))
        entry = {
            "concepts_built": built,
            "seconds": round(seconds, 1),
            "concepts_per_minute": round(built * 60.0 / max(seconds, 1e-9), 3),
            "device": device_name(self.device),
            "device_type": self.device.type,
            "mixed_precision": self.mixed_precision,
            "processes": self.world_size,
            "processes_per_device": per_device,
            "arch": cfg.arch,
            "image_size": cfg.image_size,
            "batch_size": cfg.batch_size,
            "concept_steps": cfg.concept_steps,
            "representation": cfg.representation,
            "torch": torch.__version__,
            "weightinit_version": __version__,
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        self.log(
            f"throughput: {built} concepts in {seconds:.0f} s = {entry['concepts_per_minute']:.2f} concepts/min on "
            f"{entry['device']} ({self.world_size} process(es), {entry['mixed_precision']} autocast)"
        )
        path = self.folder / THROUGHPUT_NAME
        runs = []
        if path.is_file():
            try:
                runs = list(json.loads(path.read_text()).get("runs", []))
            except (json.JSONDecodeError, AttributeError):
                runs = []
        atomic_write_json(path, {"runs": [*runs, entry]})
        return entry

    def remove_stale_temporaries(self) -> None:
        """Temporary files a killed build left behind (the other processes have not started yet)."""
        for tmp in self.folder.rglob(".*.tmp"):
            tmp.unlink(missing_ok=True)

    def ensure_base(self) -> None:
        path = self.folder / BASE_NAME
        record_path = self.folder / "records" / "_base.json"
        if path.is_file() and record_path.is_file():
            record = json.loads(record_path.read_text())
            if record.get("sha256") == sha256_file(path):
                return
            self.log("base checkpoint does not match its record; retraining it")
        self.log(f"training the base generator ({self.config.base_steps} steps on a mixture of training concepts)")
        model, seconds, metrics = self.train_base()
        save_safetensors(path, _cpu(model.state_dict()), {"weightinit.arch": self.config.arch})
        atomic_write_json(record_path, {"sha256": sha256_file(path), "seconds": seconds, "metrics": metrics})

    def train_base(self) -> tuple[torch.nn.Module, float, dict]:
        cfg = self.config
        train_concepts = [c for c in self.concepts if c.split == "train"] or self.concepts
        # Filled in place: at 128 px and more, lists joined by torch.cat would hold the pool twice.
        n, size = cfg.base_pool_per_concept, cfg.image_size
        inputs = torch.empty(len(train_concepts) * n, 3, size, size)
        targets = torch.empty_like(inputs)
        test_in, test_tg = [], []
        for i, c in enumerate(train_concepts):
            seed = concept_seed(c.id, cfg.seed)
            inputs[i * n : (i + 1) * n], targets[i * n : (i + 1) * n] = self.pairs(c, n, "train", seed)
            tx, ty = self.pairs(c, 4, "test", seed)
            test_in.append(tx)
            test_tg.append(ty)
        model = self.new_model().to(self.device)
        recipe = RecipeConfig(batch_size=cfg.batch_size, seed=cfg.seed, lr=cfg.base_lr)
        result = fine_tune(
            model, (inputs, targets), cfg.base_steps, config=recipe, mixed_precision=self.mixed_precision
        )
        metrics = evaluate(model, torch.cat(test_in), torch.cat(test_tg))
        return model, result.seconds, metrics

    def load_base(self) -> torch.nn.Module:
        model = self.new_model()
        state, _ = read_safetensors(self.folder / BASE_NAME)
        model.load_state_dict(state)
        return model.to(self.device)

    def concept_file(self, concept_id: str) -> Path:
        return self.folder / "concepts" / f"{concept_id}.safetensors"

    def record_file(self, concept_id: str) -> Path:
        return self.folder / "records" / f"{concept_id}.json"

    def is_done(self, concept_id: str) -> bool:
        path, record_path = self.concept_file(concept_id), self.record_file(concept_id)
        if not (path.is_file() and record_path.is_file()):
            return False
        try:
            record = json.loads(record_path.read_text())
        except json.JSONDecodeError:
            return False
        return record.get("sha256") == sha256_file(path)

    def train_concepts(self, todo: Sequence) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        if not todo:
            return
        with Progress(
            TextColumn(f"rank {self.rank}"),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            transient=False,
        ) as progress:
            overall = progress.add_task("concepts", total=len(todo))
            for concept in todo:
                progress.update(overall, description=f"{concept.id}")
                record = self.train_concept(concept)
                progress.advance(overall)
                progress.console.print(
                    f"[rank {self.rank}] {concept.id}: {record.seconds:.1f} s, PSNR base "
                    f"{record.metrics_base['psnr']:.2f} -> "
                    f"{record.metrics_trained['psnr']:.2f} dB",
                    markup=False,
                    highlight=False,
                )
                if self.rank == 0:
                    self.write_manifest()

    def train_concept(self, concept) -> ConceptRecord:
        cfg = self.config
        seed = cfg.data_seed(concept.id)
        train = self.pairs(concept, cfg.pool_size, "train", seed)
        test = self.pairs(concept, cfg.test_pairs, "test", seed)
        model = self.load_base()
        base_state = {k: v.clone() for k, v in model.state_dict().items()}
        metrics_base = evaluate(model, *test)
        recipe = RecipeConfig(
            batch_size=cfg.batch_size, seed=seed, lr=cfg.concept_lr if cfg.representation == "lora" else RecipeConfig.lr
        )
        start = time.perf_counter()
        if cfg.representation == "lora":
            names = self.adapter.native_to_canonical(model)
            targets = self.adapter.lora_targets(model)
            wrappers = inject_lora(model, targets, cfg.lora_rank, seed=cfg.lora_seed)
            if not cfg.lora_train_a:
                for w in wrappers.values():
                    w.lora_A.requires_grad_(False)
            params = [p for w in wrappers.values() for p in (w.lora_A, w.lora_B) if p.requires_grad]
            result = fine_tune(
                model,
                train,
                cfg.concept_steps,
                config=recipe,
                params=params,
                eval_pairs=test,
                eval_every=max(cfg.concept_steps // 4, 1),
                mixed_precision=self.mixed_precision,
            )
            tensors = {}
            for target, w in wrappers.items():
                tensors[f"{names[target + '.weight']}.lora_A"] = w.lora_A.detach()
                tensors[f"{names[target + '.weight']}.lora_B"] = w.lora_B.detach()
        else:
            result = fine_tune(
                model,
                train,
                cfg.concept_steps,
                config=recipe,
                eval_pairs=test,
                eval_every=max(cfg.concept_steps // 4, 1),
                mixed_precision=self.mixed_precision,
            )
            trained = model.state_dict()
            canonical = self.adapter.to_canonical(model, trained)
            base_canonical = self.adapter.to_canonical(model, base_state)
            tensors = {k: canonical[k].float() - base_canonical[k].float() for k in canonical}
        seconds = time.perf_counter() - start
        layout = concept_layout(self.adapter, self.new_model(), cfg)
        tensors = {s.name: tensors[s.name].detach().to("cpu", s.torch_dtype) for s in layout.slots}
        path = self.concept_file(concept.id)
        save_safetensors(
            path, tensors, {"weightinit.fingerprint": layout.fingerprint, "weightinit.concept": concept.id}
        )
        record = ConceptRecord(
            id=concept.id,
            text=concept.text,
            phrasings=list(concept.phrasings),
            family=concept.family,
            split=concept.split,
            file=str(path.relative_to(self.folder)),
            sha256=sha256_file(path),
            steps=cfg.concept_steps,
            seconds=round(seconds, 3),
            metrics_base=metrics_base,
            metrics_trained=result.final,
            trivial=trivial_baselines(*test),
            curve=[[p.step, round(p.seconds, 3), round(p.metrics["psnr"], 4)] for p in result.curve],
        )
        atomic_write_json(self.record_file(concept.id), asdict(record))
        return record

    def write_manifest(self) -> ZooManifest:
        """Gather every verified record into the manifest (process 0 only)."""
        base_record = json.loads((self.folder / "records" / "_base.json").read_text())
        layout = concept_layout(self.adapter, self.new_model(), self.config)
        records = {}
        for path in sorted((self.folder / "records").glob("*.json")):
            if path.name == "_base.json":
                continue
            cid = path.stem
            if self.is_done(cid):
                records[cid] = ConceptRecord.from_dict(json.loads(path.read_text()))
        manifest = ZooManifest(
            config=self.config,
            layout_fingerprint=layout.fingerprint,
            layout=layout.to_dict(),
            base_sha256=base_record["sha256"],
            base_metrics=base_record.get("metrics", {}),
            base_seconds=base_record.get("seconds", 0.0),
            concepts=records,
            weightinit_version=__version__,
        )
        manifest.save(self.folder)
        return manifest


def _cpu(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A state dict with every tensor on the CPU (files are written from CPU tensors)."""
    return {k: v.detach().cpu() for k, v in state.items()}


def verify_zoo(folder: str | os.PathLike) -> list[str]:
    """Every problem found (missing file, sha256 mismatch, bad fingerprint); empty if the zoo is sound."""
    folder = Path(folder)
    manifest = ZooManifest.load(folder)
    problems = []
    base = folder / BASE_NAME
    if not base.is_file():
        problems.append(f"{BASE_NAME}: missing")
    elif sha256_file(base) != manifest.base_sha256:
        problems.append(f"{BASE_NAME}: sha256 does not match the manifest")
    weights = ZooWeights(folder, manifest)
    for cid, record in manifest.concepts.items():
        path = folder / record.file
        if not path.is_file():
            problems.append(f"{cid}: {record.file} missing")
            continue
        if sha256_file(path) != record.sha256:
            problems.append(f"{cid}: sha256 does not match the manifest")
            continue
        try:
            weights.concept(cid)
        except WeightinitError as exc:
            problems.append(f"{cid}: {exc}")
    return problems
