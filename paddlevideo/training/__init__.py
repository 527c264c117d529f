"""Training: the loop in named steps (:mod:`.loop`, ``train()``), checkpoints and run identities
(:mod:`.checkpoint`), curves and logs (:mod:`.curves`).  Does not import ``apps``."""
