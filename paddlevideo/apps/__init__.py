"""What a user runs: evaluate (:mod:`.evaluate`), predict and features (:mod:`.predict`), detection on a video
(:mod:`.detect`), the timeline of a long video (:mod:`.timeline`), the online recognizer (:mod:`.online`) and
streams (:mod:`.stream`).  Does not import ``training``."""
