"""Training loop: progress bars, validation, best checkpoint, atomic checkpoints, resume.

:class:`Trainer` fills a run directory (:mod:`.run_dir` lists its files). Checkpoints are
plain dicts of tensors and Python scalars, written to a temporary file and renamed, and
load with ``torch.load(..., weights_only=True)`` (:mod:`.checkpoints`).
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional

import torch
from tqdm import tqdm

from . import distributed as dist
from .averaging import ParameterAverage
from .checkpoints import RunError, load_checkpoint, save_checkpoint
from .config import dump_config, merge_config
from .memory import keep_freed_memory, queries_per_pass, release_free_memory
from .run_dir import config_changes, forget_metrics_after, format_duration, write_text
from .run_dir import format_metrics as _fmt

if TYPE_CHECKING:      # the interface the trainer drives; the tasks build on this package
    from ..tasks.base import Task

__all__ = ["Trainer", "accumulate_gradients", "micro_rows"]


def micro_rows(task: Task, model, cfg: Dict[str, Dict[str, Any]], graph, batch) -> int:
    """Rows of a training ``batch`` per forward/backward pass (:mod:`.memory`)."""
    rows = batch.size(0)
    per_pass = queries_per_pass(int(graph.num_nodes), cfg["model"]["hidden_dim"],
                                next(model.parameters()).device, cfg["train"]["micro_batch"])
    if per_pass is None:
        return rows
    group = task.rows_per_group              # rows that share one loss term
    circuits = task.circuits_per_row         # circuit runs per row
    return max(group, per_pass // circuits // group * group)


def accumulate_gradients(task: Task, model, cfg: Dict[str, Dict[str, Any]], graph, batch,
                         total_rows: Optional[int] = None) -> float:
    """Backpropagate the loss of one training batch in micro-batches; return its value.

    The task losses are means over rows (over groups of rows for link prediction), so a
    micro-batch's loss weighted by its share of the rows adds up to the batch's gradient
    (divided by ``train.gradient_interval``). ``total_rows``: the rows of the whole batch
    when ``batch`` is one process's share of it (distributed training). A non-finite loss
    stops the accumulation and is returned (the caller decides).
    """
    rows, size = batch.size(0), micro_rows(task, model, cfg, graph, batch)
    total_rows = rows if total_rows is None else total_rows
    total = 0.0
    for start in range(0, rows, size):
        part = batch[start:start + size]
        loss = task.loss(model, graph, part) * (part.size(0) / total_rows)
        total += loss.item()
        if not math.isfinite(total):
            break
        (loss / cfg["train"]["gradient_interval"]).backward()
    return total


class Trainer:
    """Runs a task (a :class:`~grsnn.tasks.base.Task`) from a validated config.

    Args:
        task: the task (``build_model``, ``num_train``, ``make_batch``, ``loss``,
            ``evaluate``, ``vocab``, ``rows_per_group``, ``resumable``).
        cfg: the validated configuration.
        out: run directory.
        progress: show tqdm bars.
    """

    def __init__(self, task: Task, cfg: Dict[str, Dict[str, Any]], out: str | Path,
                 progress: bool = True) -> None:
        self.task, self.cfg, self.out = task, cfg, Path(out)
        self.progress = progress and dist.is_main()
        tr = cfg["train"]
        if tr["num_threads"]:
            torch.set_num_threads(int(tr["num_threads"]))
        elif dist.is_distributed() and "OMP_NUM_THREADS" not in os.environ:
            # processes sharing a machine share the cores this job may use
            local = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
            cores = (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                     else os.cpu_count() or 1)
            torch.set_num_threads(max(1, cores // local))
        self.device = dist.device_for(tr["device"])
        if self.device.type == "cpu":
            keep_freed_memory()   # reuse freed heap pages instead of faulting in new ones
        dist.set_deterministic(tr["deterministic"])
        torch.manual_seed(tr["seed"])
        self.model = task.build_model().to(self.device)
        opt = cfg["optimizer"]
        cls = getattr(torch.optim, opt["name"])
        self.optimizer = cls(self.model.parameters(), lr=opt["lr"],
                             weight_decay=opt["weight_decay"])
        # the parameters' moving average that validation, best.pt and the test see
        self.average = (ParameterAverage(self.model, tr["ema_decay"]) if tr["ema_decay"]
                        else None)
        self.gen = torch.Generator().manual_seed(tr["seed"])
        self.epoch, self.step, self.best, self.best_epoch = 0, 0, -math.inf, -1
        self.best_valid: Dict[str, float] | None = None   # the best epoch's valid metrics
        # sum of the batch losses of the current epoch and their number, kept in last.pt so
        # that a resumed epoch's mean loss covers the batches before the resume too
        self.epoch_loss: List[float] = [0.0, 0]
        # seconds the current epoch took before this piece of the run (kept in last.pt
        # likewise), and when this piece started it
        self.epoch_seconds = 0.0
        self._piece_start: Optional[float] = None

    # ------------------------------------------------------------------ state
    def log(self, msg: str, echo: bool = True) -> None:
        """A timestamped line in ``log.txt`` (and on the terminal with ``echo`` and progress)."""
        if not dist.is_main():
            return
        with open(self.out / "log.txt", "a", encoding="utf-8") as f:
            f.write(time.strftime("%Y-%m-%d %H:%M:%S ") + msg + "\n")
        if self.progress and echo:
            tqdm.write(msg)

    def state(self) -> Dict[str, Any]:
        piece = time.perf_counter() - self._piece_start if self._piece_start is not None else 0.0
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "epoch": self.epoch, "step": self.step, "generator": self.gen.get_state(),
                "best": self.best, "best_epoch": self.best_epoch,
                "best_valid": self.best_valid, "epoch_loss": list(self.epoch_loss),
                "epoch_seconds": self.epoch_seconds + piece,
                "config": self.cfg, "vocab": self.task.vocab(),
                "torch_version": str(torch.__version__),
                **({"average": self.average.state_dict()} if self.average else {})}

    def save(self, name: str) -> None:
        """Checkpoint (rank 0 only; written atomically)."""
        if dist.is_main():
            save_checkpoint(self.out / name, self.state())

    def restore(self, state: Dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.average is not None:
            self.average.load_state_dict(state["average"])
        self.gen.set_state(state["generator"])
        self.epoch, self.step = int(state["epoch"]), int(state["step"])
        self.best, self.best_epoch = float(state["best"]), int(state["best_epoch"])
        self.best_valid = state.get("best_valid")   # None: a checkpoint without the field
        # a checkpoint without epoch_loss: the resumed epoch's mean covers the batches
        # after the resume
        loss_sum, batches = state.get("epoch_loss", (0.0, 0)) if self.step else (0.0, 0)
        self.epoch_loss = [float(loss_sum), int(batches)]
        self.epoch_seconds = float(state.get("epoch_seconds", 0.0)) if self.step else 0.0

    def _drop_newer_best(self) -> None:
        """A kill between writing ``best.pt`` and ``last.pt`` leaves a best checkpoint from
        an epoch that the resumed run trains again: drop it (the re-run writes it anew;
        on CPU bit for bit), so that ``best.pt`` always belongs to ``last.pt``'s history."""
        path = self.out / "best.pt"
        if not dist.is_main() or not path.is_file():
            return
        try:
            epoch = int(load_checkpoint(path).get("epoch", 0))
        except RunError:
            return                          # unreadable: leave it for the user to see
        if epoch > self.epoch:
            path.unlink()
            self.log(f"dropped best.pt of epoch {epoch} (after the resumed checkpoint)")

    def record(self, split: str, metrics: Dict[str, float]) -> None:
        if not dist.is_main():
            return
        line = json.dumps({"epoch": self.epoch, "split": split, **metrics})
        with open(self.out / "metrics.jsonl", "a", encoding="utf-8") as f:
            f.write(line + "\n")

    # ------------------------------------------------------------------ loop
    def steps_per_epoch(self) -> int:
        tr = self.cfg["train"]
        steps = math.ceil(self.task.num_train / tr["batch_size"])
        cap = tr["max_steps_per_epoch"]
        return min(steps, cap) if cap else steps

    def backward(self, graph, batch, step: int) -> float:
        """Loss of one batch, backpropagated in micro-batches (this process's share of the
        rows under ``torchrun``); returns the batch's loss."""
        lo, hi = dist.shard(batch.size(0), self.task.rows_per_group)
        loss = 0.0
        if hi > lo:
            loss = accumulate_gradients(self.task, self.model, self.cfg,
                                        dist.to_device(graph, self.device),
                                        batch[lo:hi].to(self.device), total_rows=batch.size(0))
        loss = dist.all_reduce_sum(loss, self.device)
        if not math.isfinite(loss):
            raise RunError(f"{self.out}: loss became {loss} at epoch {self.epoch + 1} step "
                           f"{step}; lower optimizer.lr")
        return loss

    def fit(self, resume: bool = False) -> Dict[str, Dict[str, float]]:
        """Train (or continue), validate, keep the best, and evaluate it on valid and test."""
        if resume:
            self._resume()
        elif dist.is_main():
            write_text(self.out / "config.yaml", dump_config(self.cfg))
        n_steps = self.steps_per_epoch()
        while self.epoch < self.cfg["train"]["num_epoch"]:
            self._train_epoch(n_steps)
            self._validate()
            self.save("last.pt")
        return self.final()

    def _resume(self) -> None:
        """Restore ``last.pt`` (refusing a changed config) and tidy the run directory."""
        state = load_checkpoint(self.out / "last.pt")
        changed = config_changes(merge_config(state.get("config", {})), self.cfg)
        if changed:
            raise RunError(f"{self.out}: this command's config differs from the run's "
                           f"({'; '.join(changed[:3])}{'; ...' if len(changed) > 3 else ''}):"
                           f" resume with the run's own config (--resume alone reads "
                           f"{self.out / 'config.yaml'}) or --force to start over")
        self.restore(state)
        self.log(f"resumed at epoch {self.epoch} step {self.step}")
        # a resumable change (train.num_epoch, ...) becomes the run's config, so that
        # --resume alone continues with it
        text = dump_config(self.cfg)
        old = self.out / "config.yaml"
        if dist.is_main() and (not old.is_file() or old.read_text(encoding="utf-8") != text):
            write_text(old, text)
        if dist.is_main():
            forget_metrics_after(self.out / "metrics.jsonl", self.epoch)
        self._drop_newer_best()

    def _train_epoch(self, n_steps: int) -> None:
        """The batches of the current epoch from ``self.step`` on (mid-epoch checkpoints
        and progress lines included), then the epoch's log line."""
        tr = self.cfg["train"]
        order = torch.Generator().manual_seed(tr["seed"] * 100003 + self.epoch)
        perm = torch.randperm(self.task.num_train, generator=order)
        self.model.train()
        bar = tqdm(range(self.step, n_steps), desc=f"epoch {self.epoch + 1}/{tr['num_epoch']}",
                   unit="batch", disable=not self.progress, initial=self.step, total=n_steps)
        start, seen, first = time.perf_counter(), 0, self.step
        self._piece_start = start
        saved_at = self.step      # batches at the last checkpoint of this epoch
        for step in bar:
            idx = perm[step * tr["batch_size"]:(step + 1) * tr["batch_size"]]
            loss = self._train_batch(idx, step)
            seen += len(idx)
            if self._optimizer_step_due(n_steps):
                saved_at = self._optimizer_step(n_steps, saved_at)
            q_per_s = seen / max(time.perf_counter() - start, 1e-9)
            bar.set_postfix(loss=f"{loss:.4f}", q_per_s=f"{q_per_s:.1f}")
            if self.step % tr["log_interval"] == 0 and self.step < n_steps:
                self._log_progress(n_steps, (time.perf_counter() - start) / (self.step - first),
                                   q_per_s)
        bar.close()
        self._end_epoch(n_steps, first, start)

    def _train_batch(self, idx: torch.Tensor, step: int) -> float:
        """Backpropagate the training rows ``idx`` as batch ``step``; returns its loss."""
        graph, batch = self.task.make_batch(idx, self.gen)
        loss = self.backward(graph, batch, step)
        del graph, batch
        if self.device.type == "cpu":
            release_free_memory()  # freed heap pages back to the OS (RSS creep)
        self.epoch_loss = [self.epoch_loss[0] + loss, self.epoch_loss[1] + 1]
        self.step = step + 1
        return loss

    def _optimizer_step_due(self, n_steps: int) -> bool:
        """Every ``train.gradient_interval`` batches, and after the epoch's last one."""
        return self.step % self.cfg["train"]["gradient_interval"] == 0 or self.step == n_steps

    def _optimizer_step(self, n_steps: int, saved_at: int) -> int:
        """Apply the accumulated gradients; checkpoint at the first optimizer step after
        every ``train.checkpoint_interval`` batches (a checkpoint cannot fall inside a
        gradient accumulation). Returns the step of the epoch's last checkpoint."""
        dist.all_reduce_gradients(self.model.parameters())
        self.optimizer.step()
        self.optimizer.zero_grad()
        if self.average is not None:
            self.average.update(self.model)
        if self.step - saved_at >= self.cfg["train"]["checkpoint_interval"] \
                and self.step < n_steps:
            self.save("last.pt")
            return self.step
        return saved_at

    def _end_epoch(self, n_steps: int, first: int, start: float) -> None:
        """Log the epoch's mean loss and time (over all its pieces) and move to the next."""
        loss_sum, batches = self.epoch_loss
        resumed = f" ({n_steps - first} since the resume)" if first else ""
        seconds = self.epoch_seconds + time.perf_counter() - start   # all its pieces
        self.log(f"epoch {self.epoch + 1}: mean loss {loss_sum / max(1, batches):.4f} over "
                 f"{batches} batches{resumed}, {seconds:.1f} s")
        self.epoch, self.step, self.epoch_loss = self.epoch + 1, 0, [0.0, 0]
        self.epoch_seconds, self._piece_start = 0.0, None

    def _log_progress(self, n_steps: int, per_batch: float, q_per_s: float) -> None:
        """The progress line of a quiet or detached run (the bar shows it otherwise)."""
        left = n_steps - self.step
        run_left = left + (self.cfg["train"]["num_epoch"] - self.epoch - 1) * n_steps
        self.log(f"epoch {self.epoch + 1} batch {self.step}/{n_steps}: mean loss "
                 f"{self.epoch_loss[0] / self.epoch_loss[1]:.4f}, {q_per_s:.1f} "
                 f"queries/s, epoch ends in {format_duration(left * per_batch)}, run in about "
                 f"{format_duration(run_left * per_batch)} (validation not counted)",
                 echo=False)

    def _validate(self) -> None:
        """Validate after an epoch (every ``train.valid_interval`` and after the last one);
        a better model selection metric writes ``best.pt``."""
        tr, metric = self.cfg["train"], self.cfg["task"]["metric"]
        if self.epoch % tr["valid_interval"] and self.epoch != tr["num_epoch"]:
            return
        with self._evaluated_weights():
            valid = self.task.evaluate(self.model, "valid", progress=self.progress)
            self.record("valid", valid)
            self.log(f"epoch {self.epoch} valid: " + _fmt(valid))
            if valid[metric] > self.best:
                self.best, self.best_epoch = valid[metric], self.epoch
                self.best_valid = dict(valid)
                self.save("best.pt")        # its "model": the weights just validated

    def _evaluated_weights(self):
        """The weights validation sees: the moving average where ``train.ema_decay`` is
        set (swapped in for the block), the trained ones otherwise."""
        return self.average.applied(self.model) if self.average else contextlib.nullcontext()

    def final(self) -> Dict[str, Dict[str, float]]:
        """Evaluate the best checkpoint on test (and on valid unless the epoch loop already
        did: evaluation is deterministic, so its metrics are reused), write ``results.json``."""
        dist.barrier()      # rank 0 has written best.pt
        results: Dict[str, Dict[str, float]] = {}
        known = None
        weights = self._evaluated_weights()
        if (self.out / "best.pt").is_file():
            best = load_checkpoint(self.out / "best.pt")
            self.model.load_state_dict(best["model"])   # the weights it validated
            known = best.get("best_valid")   # None: a checkpoint without the field
            weights = contextlib.nullcontext()
        with weights:
            self._final_splits(results, known)
        if dist.is_main():
            write_text(self.out / "results.json", json.dumps(results, indent=2))
        return results

    def _final_splits(self, results: Dict[str, Dict[str, float]],
                      known: Optional[Dict[str, float]]) -> None:
        """The best model's valid (``known``: as validated) and test metrics, into
        ``results``."""
        for split in ("valid", "test"):   # long evaluations resume from a partial file
            if split == "valid" and known is not None:
                results[split] = dict(known)
                self.log(f"best (epoch {self.best_epoch}) valid (as validated in the epoch "
                         f"loop): " + _fmt(results[split]))
                continue
            partial = self.out / f"eval_{split}.partial.pt" if self.task.resumable else None
            results[split] = self.task.evaluate(self.model, split, progress=self.progress,
                                                partial=partial)
            self.log(f"best (epoch {self.best_epoch}) {split}: " + _fmt(results[split]))
