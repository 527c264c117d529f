"""Score the live pipeline's events against a stream's ground truth.

    python scripts/event_eval.py --gt stream_gt.json --events OUT.jsonl [--output R.json] [--iou 0.5]

Ground truth (``make_synthetic_ava.py --stream``): ``{"fps", "actors": [{"actor_id", "boxes": [[frame, x1, y1, x2,
y2], ...], "actions": [{"action_id", "start", "end"}]}]}``.  Events: predict.py --live's JSON lines.

Rules:

* a predicted event is its ``end`` line's interval ``[t_start, t_end]`` on its track; its track's **actor** is the
  actor whose boxes overlap the track's event boxes (every line of the track: start, update, end; compared with the
  actor's box at that line's frame) with IoU >= 0.5 most often (none: the event matches nothing);
* a predicted event matches a ground-truth action interval of the same action and actor when their temporal IoU is
  >= ``--iou``; one-to-one, greedy by temporal IoU (highest first);
* ``precision`` = matched / predicted events, ``recall`` = matched / ground-truth intervals, ``f1``; ``per_action``
  the same per action id; ``start_delay_s`` = the median over matched events of their ``start`` line's ``t`` minus
  the true start; ``id_switches`` = how often an actor's events, in time order, come from a different track than
  its previous matched event (ground-truth identity kept through the stream).
"""
import argparse
import json
import os
import sys
from collections import defaultdict

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from paddlevideo.errors import UserError, run_cli  # noqa: E402
from paddlevideo.report import write_json  # noqa: E402


def box_iou(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def temporal_iou(a, b):
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = max(a[1], b[1]) - min(a[0], b[0])
    return inter / union if union > 0 else 0.0


def read_events(path):
    """The event lines, grouped: ``{event_id: {"start": line, "end": line, "lines": [...]}}``."""
    if not os.path.isfile(path):
        raise UserError("--events {} not found".format(path))
    events = defaultdict(lambda: {"lines": []})
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                e = json.loads(line)
                kind, eid = e["type"], e["event_id"]
            except (ValueError, KeyError, TypeError) as err:
                raise UserError("--events {} line {}: not an event line ({})".format(path, n, err))
            events[eid]["lines"].append(e)
            events[eid][kind] = e
    return events


def evaluate(gt, events, iou_threshold=0.5):
    fps = float(gt.get("fps", 30))
    actors = {a["actor_id"]: a for a in gt["actors"]}
    boxes = {aid: {int(b[0]): b[1:5] for b in a["boxes"]} for aid, a in actors.items()}
    # each track's actor: most frequent actor at IoU >= 0.5 over the track's event lines
    votes = defaultdict(lambda: defaultdict(int))
    for ev in events.values():
        for e in ev["lines"]:
            frame = int(round(e["t"] * fps))
            best, best_iou = None, 0.5
            for aid, per in boxes.items():
                near = per.get(frame) or per.get(frame - 1) or per.get(frame + 1)
                if near is not None:
                    v = box_iou(e["box"], near)
                    if v >= best_iou:
                        best, best_iou = aid, v
            if best is not None:
                votes[e["track_id"]][best] += 1
    track_actor = {tid: max(v, key=v.get) for tid, v in votes.items()}
    preds = []
    for eid, ev in events.items():
        if "start" not in ev or "end" not in ev:
            continue
        end = ev["end"]
        preds.append({"event_id": eid, "track_id": end["track_id"], "action_id": end["action_id"],
                      "interval": (end["t_start"], end["t_end"] if end["t_end"] is not None else end["t"]),
                      "start_t": ev["start"]["t"], "actor": track_actor.get(end["track_id"])})
    truth = [{"actor": aid, "action_id": x["action_id"], "interval": (x["start"], x["end"])}
             for aid, a in actors.items() for x in a["actions"]]
    cands = []
    for i, p in enumerate(preds):
        for j, g in enumerate(truth):
            if p["actor"] == g["actor"] and p["action_id"] == g["action_id"]:
                v = temporal_iou(p["interval"], g["interval"])
                if v >= iou_threshold:
                    cands.append((v, i, j))
    matched_p, matched_g, pairs = set(), set(), []
    for v, i, j in sorted(cands, reverse=True):
        if i not in matched_p and j not in matched_g:
            matched_p.add(i)
            matched_g.add(j)
            pairs.append((i, j))
    per_action = {}
    for action in sorted({g["action_id"] for g in truth} | {p["action_id"] for p in preds}):
        np_ = sum(p["action_id"] == action for p in preds)
        ng = sum(g["action_id"] == action for g in truth)
        tp = sum(preds[i]["action_id"] == action for i, _ in pairs)
        per_action[str(action)] = _prf(tp, np_, ng)
    delays = [preds[i]["start_t"] - truth[j]["interval"][0] for i, j in pairs]
    switches = 0
    for aid in actors:
        seq = sorted((truth[j]["interval"][0], preds[i]["track_id"]) for i, j in pairs if truth[j]["actor"] == aid)
        switches += sum(1 for a, b in zip(seq, seq[1:]) if a[1] != b[1])
    res = _prf(len(pairs), len(preds), len(truth))
    res.update({"per_action": per_action, "start_delay_s": round(float(np.median(delays)), 3) if delays else None,
                "id_switches": switches, "events": len(preds), "ground_truth": len(truth), "matched": len(pairs),
                "iou": iou_threshold, "tracks": len({p["track_id"] for p in preds}),
                "unassigned_tracks": len({p["track_id"] for p in preds if p["actor"] is None})})
    return res


def _prf(tp, n_pred, n_gt):
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_gt if n_gt else 0.0
    return {"precision": round(p, 4), "recall": round(r, 4), "f1": round(2 * p * r / (p + r), 4) if p + r else 0.0,
            "matched": tp, "predicted": n_pred, "ground_truth": n_gt}


def main(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gt", required=True, help="stream_gt.json")
    p.add_argument("--events", required=True, help="the events (JSON lines)")
    p.add_argument("--output", default=None, help="write the result JSON here")
    p.add_argument("--iou", type=float, default=0.5, help="least temporal IoU of a match (default 0.5)")
    p.add_argument("--debug", action="store_true")
    a = p.parse_args(argv)
    if not os.path.isfile(a.gt):
        raise UserError("--gt {} not found".format(a.gt))
    try:
        with open(a.gt) as f:
            gt = json.load(f)
        gt["actors"]
    except (ValueError, KeyError, TypeError) as e:
        raise UserError("--gt {}: not a stream ground truth ({})".format(a.gt, e))
    res = evaluate(gt, read_events(a.events), a.iou)
    print("events: precision {precision:.3f}, recall {recall:.3f}, F1 {f1:.3f} ({matched} of {ground_truth} true "
          "intervals, {events} events); median start delay {start_delay_s} s; id switches {id_switches}".format(**res))
    if a.output:
        write_json(a.output, res)
    return 0


if __name__ == "__main__":
    run_cli(main)
