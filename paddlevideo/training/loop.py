"""Training: Momentum/AdamW, step or cosine LR with warm-up, per-epoch checkpoints, validation, resume.

Reproducibility: the run has one seed (``TRAIN.seed`` with ``--fix_random_seed True``, else
random and stored in the checkpoint).  Weight init uses ``seed``; in epoch ``e`` the shuffle
order, every clip's sampling/crop/flip and the dropout masks derive from ``(seed, e)`` only.  A
resumed run therefore repeats exactly what the uninterrupted run would have done.
"""
import base64
import contextlib
import json
import os
import pickle
import random
import signal
import sys
import threading
import time

import numpy as np
import paddle
from tqdm import tqdm

from .. import download
from ..errors import UserError
from ..models import build_model
from ..weights import load_weights
from ..runtime import parallel
from ..runtime.backends import dygraph_runner
from .checkpoint import (find_latest, mark_run, new_run_id, read_resume, remove_stale_temporaries, resume_point,
                         run_differences,
                         save_checkpoint)
from ..config import label_map_path
from ..report import log, warn
from ..runtime.batches import set_device
from .curves import VisualDLWriter, plot_curves, read_jsonl
from ..metrics.classification import Metrics
from ..runtime.batches import run_eval
from ..tasks import task_for


def build_optimizer(m, model, steps_per_epoch):
    """Optimizer and LR schedule of the TRAIN section ``m``; the schedule is stepped once per batch.

    * ``optimizer: momentum`` — SGD with ``momentum`` and L2 decay ``l2_weight_decay`` on every
      parameter (the legacy recipe); ``adamw`` — AdamW with decoupled weight decay
      ``l2_weight_decay`` on conv/fc weights (not on BN parameters and biases).
    * ``lr_schedule: step`` — ``learning_rate`` × ``learning_rate_decay`` at each epoch of
      ``decay_epochs``; ``cosine`` — cosine from ``learning_rate`` to 0 at the last step.
    * ``warmup_epochs`` (may be fractional) — linear warm-up from 0 first; the main schedule
      then runs over the remaining steps (step boundaries stay at their epochs).
    """
    lr = paddle.optimizer.lr
    total = max(m.epoch * steps_per_epoch, 1)
    warm = min(int(round(m.warmup_epochs * steps_per_epoch)), total - 1) if m.warmup_epochs > 0 else 0
    if m.lr_schedule == "cosine":
        sched = lr.CosineAnnealingDecay(m.learning_rate, T_max=max(total - warm, 1))
    else:
        values = [m.learning_rate * m.learning_rate_decay ** i for i in range(len(m.decay_epochs) + 1)]
        bounds = [max(e * steps_per_epoch - warm, 1) for e in m.decay_epochs]
        sched = (lr.PiecewiseDecay(boundaries=bounds, values=values) if bounds
                 else lr.PiecewiseDecay(boundaries=[10 ** 12], values=values * 2))
    if warm:
        sched = lr.LinearWarmup(sched, warm, 0.0, m.learning_rate)
    clip = paddle.nn.ClipGradByGlobalNorm(m.clip_norm) if m.clip_norm > 0 else None
    if m.optimizer == "adamw":
        no_decay = {p.name for p in model.parameters() if len(p.shape) <= 1}
        opt = paddle.optimizer.AdamW(learning_rate=sched, parameters=model.parameters(), weight_decay=m.l2_weight_decay,
                                     apply_decay_param_fun=lambda name: name not in no_decay, grad_clip=clip)
    else:
        opt = paddle.optimizer.Momentum(learning_rate=sched, momentum=m.momentum, parameters=model.parameters(),
                                        weight_decay=paddle.regularizer.L2Decay(m.l2_weight_decay), grad_clip=clip)
    return opt, sched


class _StopRequest:
    """While active, Ctrl-C (SIGINT) and SIGTERM only set ``requested``; the loop then saves a
    ``NAME_interrupted`` checkpoint after the current step and exits with status 130."""

    def __init__(self):
        self.requested = False
        self._old = {}

    def _handle(self, signum, frame):
        if not self.requested:
            print("\n[TRAIN] stop requested: saving the current state...", file=sys.stderr, flush=True)
        self.requested = True

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)


def _encode_rng(states):
    return base64.b64encode(pickle.dumps(states)).decode("ascii")


def _decode_rng(text):
    return pickle.loads(base64.b64decode(text))


class _NoStop:
    """Data parallel: no interrupted checkpoint (a rank cannot finish a step alone); SIGTERM/Ctrl-C stop
    the processes and ``--resume auto`` continues from the last epoch checkpoint."""
    requested = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _save_interrupted(run, epoch, next_batch):
    """Save where a stopped run continues (mid-epoch, with the RNG state) and exit 130."""
    state = {"epoch": epoch - 1, "next_epoch": epoch, "next_batch": next_batch, "step": run.step,
             "lr": run.opt.get_lr(), "seed": run.seed, "rng": _encode_rng(paddle.get_rng_state()),
             "model": run.model_name, "num_classes": run.m.num_classes, "run_id": run.run_id}
    state.update(run.amp.checkpoint())
    base = save_checkpoint(run.save_dir, "{}_interrupted".format(run.model_name), run.net, run.opt, state, run.cfg)
    log("[TRAIN] interrupted in epoch {} after batch {}; saved {}.pdparams — continue with --resume auto"
        .format(epoch, next_batch, base))
    raise SystemExit(130)


class _Window:
    """Mean loss / top-1 and clips/s over the batches since the last log line."""

    def __init__(self):
        self.t0, self.n, self.loss, self.c1 = time.time(), 0, 0.0, 0

    def add(self, loss, correct1, b):
        self.n, self.loss, self.c1 = self.n + b, self.loss + loss * b, self.c1 + correct1

    def flush(self):
        dt = max(time.time() - self.t0, 1e-9)
        out = {"loss": self.loss / max(self.n, 1), "top1": self.c1 / max(self.n, 1), "clips_per_s": round(self.n / dt, 2)}
        self.__init__()
        return out


class JsonLog:
    """``save_dir/NAME_log.jsonl``: one JSON object per line, appended (a resumed run continues it; a new
    run in the same folder first moves an old log to ``NAME_log.jsonl.old``).

    Lines: ``{"type": "iter", epoch, iter, step, loss, top1, lr, clips_per_s}`` every
    ``log_interval`` batches (means over those batches) and ``{"type": "epoch", epoch, step, loss,
    top1, top5, lr, seconds, clips_per_s, skipped, valid_loss, valid_top1}`` after each epoch.
    """

    def __init__(self, path, vdl=None, run_id=None):
        self.path = path
        self.vdl = vdl          # a curves.VisualDLWriter, or None
        self.run_id = run_id    # every line names the run that wrote it

    def write(self, record):
        record = dict(record, time=round(time.time(), 3), run_id=self.run_id)
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
        if self.vdl is not None:
            self.vdl.write(record)


def _epoch_seed(seed, epoch):
    return (seed * 1000003 + epoch * 7919 + 17) % (2 ** 31)


def freeze_batchnorm(model, mode):
    """``MODEL.freeze_bn``: ``all`` / ``all_but_first`` (TSN/TSM's partial BN) BatchNorm layers use their
    running statistics in training and their scale/shift stay fixed; ``none`` leaves them.  Call after
    every ``model.train()`` (which switches them back).  Returns the frozen layers."""
    if mode == "none":
        return []
    bns = [l for l in model.sublayers() if isinstance(l, (paddle.nn.layer.norm._BatchNormBase, paddle.nn.BatchNorm))]
    frozen = bns[1:] if mode == "all_but_first" else bns
    for layer in frozen:
        layer.eval()
        for p in layer.parameters():
            p.stop_gradient = True
    return frozen


class _Amp:
    """``TRAIN.amp: O1 | O2`` — ``paddle.amp.auto_cast`` with a ``GradScaler`` (its state is saved in the
    checkpoint's state file and restored on resume); GPU only."""

    def __init__(self, level, use_gpu):
        self.level = level
        self.scaler = None
        if not level:
            return
        if not use_gpu:
            raise UserError("TRAIN.amp {} needs a GPU (float16 autocast + loss scaling); on this CPU bf16 autocast "
                            "made a training step slower (README: Measured here), so set TRAIN.amp: null".format(level))
        self.scaler = paddle.amp.GradScaler(init_loss_scaling=2.0 ** 15)

    def prepare(self, model, opt):
        """O2 casts the model to float16 with float32 master weights; returns ``(model, opt)``."""
        if self.level == "O2":
            return paddle.amp.decorate(models=model, optimizers=opt, level="O2")
        return model, opt

    def autocast(self):
        return paddle.amp.auto_cast(level=self.level) if self.level else contextlib.nullcontext()

    def backward(self, loss):
        (self.scaler.scale(loss) if self.scaler else loss).backward()

    def step(self, opt):
        if self.scaler:
            self.scaler.step(opt)
            self.scaler.update()
        else:
            opt.step()

    def checkpoint(self):
        """``{"amp_scaler": the GradScaler's state}`` for the state file, ``{}`` without AMP."""
        if not self.scaler:
            return {}
        return {"amp_scaler": {k: (np.asarray(v).tolist() if hasattr(v, "shape") or hasattr(v, "numpy") else v)
                               for k, v in self.scaler.state_dict().items()}}

    def load(self, state):
        if self.scaler and state:
            self.scaler.load_state_dict({k: (np.asarray(v, np.float32) if isinstance(v, list) else v)
                                         for k, v in state.items()})


class _Run:
    """The state one training run carries between its steps (see :func:`train`)."""

    def __init__(self, cfg, model_name, save_dir):
        self.cfg, self.model_name, self.save_dir = cfg, model_name, save_dir
        self.m = cfg.mode("train")
        self.task = task_for(cfg)
        self.world, self.rank = parallel.init()
        self.main = self.rank == 0
        self.say = log if self.main else (lambda msg: None)


def _read_data(run, valid_interval, skip_bad_lines):
    """Step 1: the training items and (with validation) the VALID items, checked before anything runs."""
    m, task = run.m, run.task
    run.items = task.read(m, skip_bad_lines)
    vm = run.cfg.mode("valid")
    run.valid_items = None
    if valid_interval > 0 and vm.filelist:
        try:
            run.valid_items = task.read(vm, skip_bad_lines)
        except UserError as e:
            raise UserError("{} (validation list; --valid_interval 0 trains without validation)".format(e))
    if len(run.items) < m.batch_size * run.world:
        raise UserError("the training list {} has {} samples, fewer than TRAIN.batch_size={} x {} processes; lower "
                        "--batch_size".format(m.filelist, len(run.items), m.batch_size, run.world))


def _restore(run, resume, pretrain, fix_random_seed, cache_dir):
    """Step 2: seed, model, loader, optimizer; then the checkpoint to resume, the file to fine-tune from or the
    pretrained trunk.  Sets ``run.net/model/opt/sched/loader/amp`` and where the loop starts."""
    m, say, world = run.m, run.say, run.world
    os.makedirs(run.save_dir, exist_ok=True)           # fail now, not after the first epoch
    if run.main:
        remove_stale_temporaries(run.save_dir, run.model_name)
    parallel.barrier(world, "start of training")
    run.start_epoch, run.step, state, opt_path = 0, 0, None, None
    if resume == "auto":
        base, passed = find_latest(run.save_dir, run.model_name, run.cfg)
        for other, why in passed:
            say("[TRAIN] --resume auto: not {} ({})".format(os.path.basename(other), why))
        if base is None:
            say("[TRAIN] --resume auto: no checkpoint of this run of {} in {}, starting from scratch".format(
                run.model_name, run.save_dir))
            resume = None
        else:
            fits = run_differences(run.cfg, base)
            say("[TRAIN] --resume auto: continuing {} (the furthest checkpoint {})".format(
                os.path.basename(base), "of the same network and training list" if fits is not None
                else "in {}; it has no config beside it, so its run cannot be checked".format(run.save_dir)))
            resume = base + ".pdparams"
    if resume:
        params_path, opt_path, state = read_resume(parallel.rank0_first(
            world, run.rank, lambda: download.resolve(resume, cache_dir)))
    seed = state["seed"] if state else (m.seed if fix_random_seed else random.randrange(2 ** 31))
    seed = parallel.gather(seed, world)[0]                  # rank 0's seed for every rank
    if fix_random_seed and m.use_gpu:
        paddle.set_flags({"FLAGS_cudnn_deterministic": True})
    paddle.seed(seed)
    np.random.seed(seed % (2 ** 32))
    random.seed(seed)
    run.seed = seed
    net = build_model(run.cfg)                              # the model itself (checkpoints hold its state)
    run.train_ds = run.task.dataset(run.items, m, seed=seed)
    run.loader = run.task.loader(run.train_ds, m, shuffle=True, drop_last=True, seed=seed, rank=run.rank,
                                 world=world, train=True)
    run.accumulate = m.accumulate_steps
    run.steps_per_epoch = -(-len(run.loader) // run.accumulate)   # a last partial accumulation also steps
    opt, run.sched = build_optimizer(m, net, run.steps_per_epoch)
    run.start_batch, run.rng_state, amp_state = 0, None, None
    if state:
        load_weights(net, params_path)
        opt.set_state_dict(paddle.load(opt_path))
        (run.start_epoch, run.start_batch), run.step = resume_point(state), state["step"]
        run.rng_state = state.get("rng")
        amp_state = state.get("amp_scaler")
        say("[TRAIN] resumed {} (run {}) at epoch {}{} (lr {:.6g})".format(
            params_path, state.get("run_id", "without an identity"), run.start_epoch,
            ", batch {}".format(run.start_batch) if run.start_batch else "",
            opt.get_lr()))
    elif resume:
        skipped = load_weights(net, params_path, allow_classifier_mismatch=True)
        say("[TRAIN] {} holds parameters only: fine-tuning from it at epoch 0 with a fresh optimizer{}".format(
            params_path, " (classifier re-initialised)" if skipped else ""))
    else:
        pre = pretrain if pretrain is not None else m.pretrain
        if pre and pre.lower() != "none":
            md5 = m.pretrain_md5 if pretrain is None else None
            pre = parallel.rank0_first(world, run.rank, lambda: download.resolve(pre, cache_dir, md5))
            skipped = load_weights(net, pre, allow_classifier_mismatch=True)
            say("[TRAIN] initialised from {}{}".format(pre, " (classifier re-initialised)" if skipped else ""))
        else:
            say("[TRAIN] training from scratch (no pretrained weights)")
            if m.freeze_bn != "none" and run.main:
                warn("MODEL.freeze_bn {} with a randomly initialised trunk keeps BatchNorm at its initial statistics "
                     "(mean 0, variance 1), which usually makes training diverge; it is meant for fine-tuning "
                     "pretrained weights (--pretrain)".format(m.freeze_bn))
    if m.sync_bn:
        net = paddle.nn.SyncBatchNorm.convert_sync_batchnorm(net)
    run.amp = _Amp(m.amp, m.use_gpu)
    net, opt = run.amp.prepare(net, opt)
    run.amp.load(amp_state)
    run.net, run.opt = net, opt
    run.model = parallel.wrap(net, world)
    run.state = state
    run.run_id = parallel.gather((state or {}).get("run_id") or new_run_id(), world)[0]   # rank 0's for all
    if run.main:
        mark_run(run.save_dir, run.model_name, run.run_id, params_path if state else None)


def _valid_loader(run):
    """The VALID loader (this rank's shard), or None."""
    if not run.valid_items:
        return None
    vm = run.cfg.mode("valid")
    run.valid_ds = run.task.dataset(run.valid_items, vm)
    return run.task.loader(run.valid_ds, vm, rank=run.rank, world=run.world, pad=False)


def _train_epoch(run, epoch, stop, jsonl, log_interval, trace):
    """Step 3: one epoch over this rank's shard; returns the rank's sums ``[n, loss_sum, c1, c5, skipped]``."""
    m, task, model, net, opt, amp = run.m, run.task, run.model, run.net, run.opt, run.amp
    first = run.start_batch if epoch == run.start_epoch else 0
    if first and run.rng_state is not None:
        paddle.set_rng_state(_decode_rng(run.rng_state))     # continue the interrupted epoch exactly
    else:
        paddle.seed(_epoch_seed(run.seed, epoch) + run.rank)
    run.loader.batch_sampler.epoch, run.loader.batch_sampler.start_batch = epoch, first
    model.train()
    freeze_batchnorm(net, m.freeze_bn)
    n, loss_sum, c1, c5, skipped, done = 0, 0.0, 0, 0, 0, first
    pending = False                               # gradients accumulated since the last step
    window = _Window()
    bar = tqdm(run.loader, desc="epoch {}".format(epoch), leave=False, mininterval=2, initial=first,
               disable=not run.main)
    items = run.items
    try:
        for it, batch in enumerate(bar, start=first):
            inputs, y, idx, failed = task.unpack(batch)
            skipped += len(failed)
            for i in failed:
                warn("epoch {}: skipped unreadable video {}".format(epoch, _item_name(items[int(i)])))
            if trace:
                with open("{}.rank{}".format(trace, run.rank), "a") as f:
                    f.write(json.dumps({"epoch": epoch, "iter": it, "items": [int(i) for i in idx] +
                                        [int(i) for i in failed]}) + "\n")
            last = (it + 1) % run.accumulate == 0 or it + 1 == len(run.loader)
            sync = contextlib.nullcontext() if last or run.world == 1 else model.no_sync()
            with sync:
                if inputs is not None:
                    with amp.autocast():
                        outputs = model(*inputs)
                        loss = task.loss(model, outputs, y)
                    amp.backward(loss / run.accumulate)
                    pending = True
                elif run.world > 1:          # keep the ranks' gradient exchange in step: a zero contribution
                    zero_step(model, net, task, m, amp)
                    pending = True
            if last:
                if pending:
                    amp.step(opt)
                    opt.clear_grad()
                    run.step += 1
                pending = False
                run.sched.step()
            if inputs is not None:
                lv = float(loss)
                b, a1, a5 = task.counts(outputs, y)
                n += b
                loss_sum += lv * b
                c1, c5 = c1 + a1, c5 + a5
                window.add(lv, a1, b)
                if run.main and log_interval and (it + 1) % log_interval == 0:
                    jsonl.write(dict(window.flush(), type="iter", epoch=epoch, iter=it, step=run.step,
                                     lr=opt.get_lr()))
                if run.main and log_interval and it % log_interval == 0:
                    tqdm.write("[TRAIN] Epoch {}, iter {} \tLoss: {:.6f},\ttop1_acc: {:.4f}, \ttop5_acc: {:.4f}"
                               .format(epoch, it, lv, a1 / max(b, 1), a5 / max(b, 1)))
            done = it + 1
            if stop.requested and last:
                _save_interrupted(run, epoch, done)
    except Exception:
        if not stop.requested:   # workers also get Ctrl-C and may die first
            raise
        _save_interrupted(run, epoch, done)
    bar.close()
    return [n, loss_sum, c1, c5, skipped]


def zero_step(model, net, task, m, amp):
    """A forward/backward that contributes zero gradients (a rank whose batch failed entirely must still join
    the gradient exchange), with BatchNorm in eval mode so that the placeholder input leaves the running
    statistics untouched."""
    bns = [l for l in net.sublayers() if isinstance(l, (paddle.nn.layer.norm._BatchNormBase, paddle.nn.BatchNorm))
           and l.training]
    for layer in bns:
        layer.eval()
    try:
        with amp.autocast():
            dummy = model(*task.zero_inputs(m)).sum() * 0.0
        amp.backward(dummy)
    finally:
        for layer in bns:
            layer.train()


def _item_name(item):
    return item[0] if isinstance(item, tuple) else item.get("key", item)


def _validate(run, valid_loader, epoch):
    """Step 4: the VALID set over every rank, by the task (classification: loss/top-1/top-5; detection:
    frame-mAP); its summary line is logged on rank 0."""
    res, line = run.task.validate(dygraph_runner(run.net), valid_loader, run.valid_items, run.valid_ds, run.cfg,
                                  run.world)
    if line:
        run.say("[VALID] Epoch {}\t{}".format(epoch, line))
    return res


def train(cfg, model_name, save_dir="./checkpoints", pretrain=None, resume=None, valid_interval=1,
          log_interval=10, fix_random_seed=False, skip_bad_lines=False, cache_dir=None, vdl_dir=None):
    """``train.py``: train ``cfg`` and write checkpoints to ``save_dir``; return per-epoch summaries.

    Steps: :func:`_read_data` → :func:`_restore` → per epoch :func:`_train_epoch`, checkpoint,
    :func:`_validate`, log.  What a model family trains on and how (data, loss, counts, validation metric)
    comes from its task (:mod:`.tasks`).

    Also written to ``save_dir``: ``NAME_log.jsonl`` (:class:`JsonLog`) and ``NAME_curves.png`` (redrawn
    after every epoch); with ``vdl_dir`` the same scalars for VisualDL.  Under
    ``paddle.distributed.launch`` every process trains on its shard with gradients averaged over ranks,
    validation is gathered over ranks, and rank 0 alone writes files and logs (see :mod:`.parallel`)."""
    run = _Run(cfg, model_name, save_dir)
    m, world, say, main = run.m, run.world, run.say, run.main
    set_device(m.use_gpu)
    vdl = VisualDLWriter(vdl_dir) if vdl_dir and main else None        # fails now if VisualDL is missing
    if m.sync_bn and not (m.use_gpu and world > 1):
        raise UserError("MODEL.sync_bn synchronises BatchNorm statistics across GPUs: it needs --use_gpu True and "
                        "more than one process (paddle.distributed.launch); set MODEL.sync_bn: false")
    if not run.task.parallel_validation and world > 1 and valid_interval > 0 and cfg.mode("valid").filelist:
        raise UserError("data-parallel {} training validates on one process only for now; pass --valid_interval 0 "
                        "and run eval.py on the final checkpoint".format(run.task.name))
    fix_random_seed = fix_random_seed or m.fix_random_seed
    _read_data(run, valid_interval, skip_bad_lines)
    _restore(run, resume, pretrain, fix_random_seed, cache_dir)
    valid_loader = _valid_loader(run)
    accumulate = run.accumulate
    say("[TRAIN] {}: {} {}, batch {} per process x {} process{} = global batch {}{}, {} steps/epoch, "
        "epochs {}..{}, seed {}".format(
            model_name, len(run.items), run.task.unit, m.batch_size,
            world, "es" if world > 1 else "", m.batch_size * world * accumulate,
            " ({} accumulated batches per step)".format(accumulate) if accumulate > 1 else "",
            run.steps_per_epoch, run.start_epoch, m.epoch - 1, run.seed))
    stop = _StopRequest() if world == 1 else _NoStop()
    history = []
    log_path = os.path.join(save_dir, "{}_log.jsonl".format(model_name))
    if main and run.state is None and os.path.exists(log_path):   # a new run, not a resumed one: a new log
        os.replace(log_path, log_path + ".old")
        say("[TRAIN] the previous run's log moved to {}.old".format(log_path))
    jsonl = JsonLog(log_path, vdl, run.run_id) if main else None
    curves = os.path.join(save_dir, "{}_curves.png".format(model_name))
    trace = os.environ.get("PADDLEVIDEO_SAMPLE_TRACE")    # debugging/tests: which items each rank trained on
    state = run.state
    with stop:
        for epoch in range(run.start_epoch, m.epoch):
            t0 = time.time()
            sums = _train_epoch(run, epoch, stop, jsonl, log_interval, trace)
            lr = run.opt.get_lr()
            totals = parallel.gather(sums, world)   # the epoch over every rank
            n_all, loss_all, c1_all, c5_all, skipped_all = [sum(t[k] for t in totals) for k in range(5)]
            summary = {"epoch": epoch, "loss": loss_all / max(n_all, 1), "top1_acc": c1_all / max(n_all, 1),
                       "top5_acc": c5_all / max(n_all, 1), "skipped": skipped_all}
            say("[TRAIN] Epoch {} finished\tavg_loss: {:.6f},\ttop1_acc: {:.4f},\ttop5_acc: {:.4f},\tlr: {:.6g},"
                "\ttime: {:.1f}s,\tskipped videos: {}".format(epoch, summary["loss"], summary["top1_acc"],
                                                             summary["top5_acc"], lr, time.time() - t0, skipped_all))
            state = {"epoch": epoch, "next_epoch": epoch + 1, "next_batch": 0, "step": run.step, "lr": lr,
                     "next_lr": run.opt.get_lr(), "seed": run.seed, "model": model_name,
                     "num_classes": m.num_classes, "world_size": world, "run_id": run.run_id}
            state.update(run.amp.checkpoint())
            if main:
                base = save_checkpoint(save_dir, "{}_epoch{}".format(model_name, epoch), run.net, run.opt, state,
                                       cfg)
                say("[TRAIN] saved {}.pdparams".format(base))
            if valid_loader is not None and (epoch + 1) % valid_interval == 0:
                summary["valid"] = _validate(run, valid_loader, epoch)
            history.append(summary)
            seconds = max(time.time() - t0, 1e-9)
            if main:
                valid = summary.get("valid", {})
                jsonl.write({"type": "epoch", "epoch": epoch, "step": run.step, "loss": summary["loss"],
                             "top1": summary["top1_acc"], "top5": summary["top5_acc"], "lr": lr,
                             "seconds": round(seconds, 2), "clips_per_s": round(n_all / seconds, 2),
                             "skipped": skipped_all, "world_size": world,
                             "valid_loss": valid.get("loss"),
                             "valid_top1": valid.get("top1_acc", valid.get("mAP"))})
                plot_curves({model_name: read_jsonl(jsonl.path)}, curves, "{} ({})".format(model_name, save_dir))
            parallel.barrier(world, "end of epoch {}".format(epoch))
        if run.start_epoch < m.epoch:
            if main:
                base = save_checkpoint(save_dir, "{}_final".format(model_name), run.net, run.opt, state, cfg)
                say("[TRAIN] finished; final weights {}.pdparams".format(base))
        else:
            say("[TRAIN] nothing to do: already trained for {} epochs".format(m.epoch))
    if vdl is not None:
        vdl.close()
    return history
