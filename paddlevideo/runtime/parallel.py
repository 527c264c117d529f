"""Data-parallel training on Paddle's own engine: ``python -m paddle.distributed.launch --nproc_per_node N
train.py ...`` (NCCL on GPUs, Gloo on CPUs, ``--ips`` for several machines; ``run.sh train ... --nproc N``
wraps it).  The launcher sets ``PADDLE_TRAINERS_NUM`` / ``PADDLE_TRAINER_ID`` for each process; this
module reads them, starts the process group, and gathers Python objects (validation results) over ranks.
"""
import os
import time

import paddle
import paddle.distributed as dist

from ..errors import UserError

_SEQUENCE = [0]           # every rank runs the same collectives in the same order: the n-th is the same on all


def collective_timeout():
    """Seconds a rank waits at a collective for the others (``PADDLEVIDEO_COLLECTIVE_TIMEOUT``, default 300)."""
    try:
        return float(os.environ.get("PADDLEVIDEO_COLLECTIVE_TIMEOUT", "300"))
    except ValueError:
        raise UserError("PADDLEVIDEO_COLLECTIVE_TIMEOUT must be a number of seconds (got {!r})".format(
            os.environ["PADDLEVIDEO_COLLECTIVE_TIMEOUT"]))


def check_in(world, what):
    """Before a collective: mark this rank's arrival in the launcher's key-value store and wait until every rank
    has arrived; after :func:`collective_timeout` seconds stop with one line naming the ranks that did not (a rank
    that failed or hangs between collectives would otherwise leave the others waiting forever)."""
    from paddle.distributed import collective
    store = getattr(collective, "_default_store", None)
    if world == 1 or store is None:
        return
    _SEQUENCE[0] += 1
    key, rank = "paddlevideo/{}".format(_SEQUENCE[0]), dist.get_rank()
    store.add("{}/{}".format(key, rank), 1)
    store.add(key, 1)
    timeout = collective_timeout()
    deadline = time.time() + timeout
    while store.add(key, 0) < world:
        if time.time() > deadline:
            missing = [r for r in range(world) if store.add("{}/{}".format(key, r), 0) == 0]
            raise UserError("rank {}: rank(s) {} did not reach the {} within {:g} s (PADDLEVIDEO_COLLECTIVE_TIMEOUT); "
                            "they failed or hang — see their log/workerlog.N".format(
                                rank, ", ".join(map(str, missing)), what, timeout))
        time.sleep(0.02)


def world_and_rank():
    """``(world size, rank)`` from the launcher's environment; ``(1, 0)`` for a plain ``python train.py``."""
    return int(os.environ.get("PADDLE_TRAINERS_NUM", "1")), int(os.environ.get("PADDLE_TRAINER_ID", "0"))


def exit_status(code):
    """The exit code of a CLI that finished its work.  Under a launch of several processes the launcher reports any
    non-zero rank as a crash (and stops the others), so rank 0 writes ``code`` to ``PADDLEVIDEO_STATUS_FILE`` (set
    by run.sh, which exits with it) and every rank exits 0."""
    world, rank = world_and_rank()
    path = os.environ.get("PADDLEVIDEO_STATUS_FILE")
    if world == 1 or not path:
        return code
    if rank == 0:
        with open(path, "w") as f:
            f.write(str(code))
    return 0


def init():
    """Join the process group when launched with more than one process; return ``(world, rank)``."""
    world, rank = world_and_rank()
    if world > 1:
        dist.init_parallel_env()
    return world, rank


def gather(obj, world):
    """Every rank's ``obj`` as a list ordered by rank (``[obj]`` when not distributed)."""
    if world == 1:
        return [obj]
    check_in(world, "gathering of results")
    out = []
    dist.all_gather_object(out, obj)
    return out


def barrier(world, what="barrier"):
    if world > 1:
        check_in(world, what)
        dist.barrier()


def rank0_first(world, rank, fn):
    """``fn()`` on rank 0 first (e.g. a download into the shared cache), then on the others after a barrier (they
    find the file there) — not every rank writing the same ``.part`` file at once."""
    if world == 1:
        return fn()
    if rank == 0:
        out = fn()
        barrier(world)
        return out
    barrier(world)
    return fn()


def wrap(model, world):
    """``paddle.DataParallel(model)`` (gradients averaged over ranks in backward) when distributed."""
    return paddle.DataParallel(model) if world > 1 else model


def diagnose(log_dir, mode="train"):
    """After a failed launch: which rank failed first, read from the launcher's ``workerlog.N`` files.

    When a rank dies (killed, out of memory), its peers abort at their next gradient exchange (a Gloo/NCCL
    timeout or a lost connection) and the launcher reports whichever process it noticed first — often a
    survivor.  In order: a rank the others name as their lost peer ("pair_rank = N"); a rank with a Python
    traceback (an error in the training code); a rank whose log just stops, without the abort report the
    survivors print (killed from outside).  Returns one line for the user, or None."""
    import glob
    import re
    named, python_error, silent = {}, [], []
    logs = [p for p in glob.glob(os.path.join(glob.escape(log_dir), "workerlog.*"))
            if re.fullmatch(r"workerlog\.\d+", os.path.basename(p))]          # not workerlog.0.bak, notes, ...
    for path in sorted(logs, key=lambda p: int(p.rsplit(".", 1)[-1])):
        rank = path.rsplit(".", 1)[-1]
        try:
            with open(path, errors="replace") as f:
                text = f.read()
        except OSError:
            continue
        for peer in re.findall(r"pair_rank\s*=\s*(\d+)", text):
            named[peer] = named.get(peer, 0) + 1
        if "Traceback (most recent call last)" in text and "C++ Traceback" not in text:
            python_error.append(rank)
        elif not re.search(r"Aborted at|FatalError|Error Message Summary|SIGTERM|Traceback", text):
            silent.append(rank)
    resume = ("continue from the last complete checkpoint with --resume auto" if mode == "train" else
              "rerun the same command with --resume to finish the videos without output")
    if named:
        dead = max(named, key=named.get)
        return ("rank {} died first (its peers lost the connection to it) and the other ranks were stopped; {}. "
                "Its log: {}".format(dead, resume, os.path.join(log_dir, "workerlog." + dead)))
    if python_error:
        return "rank {} failed with an error, see {}; {} once it is fixed".format(
            python_error[0], os.path.join(log_dir, "workerlog." + python_error[0]), resume)
    if silent:
        return ("rank {} died first (its log stops without an error: killed from outside, e.g. SIGKILL or out of "
                "memory) and the other ranks were stopped; {}".format(", ".join(silent), resume))
    return None


if __name__ == "__main__":           # python -m paddlevideo.runtime.parallel diagnose LOG_DIR
    import sys
    if len(sys.argv) in (3, 4) and sys.argv[1] == "diagnose":
        line = diagnose(*sys.argv[2:])
        if line:
            print("error: " + line, file=sys.stderr)
