"""Neural reconstruction: semantic dedup, clustering, ENTP fusion, LM-Mixup distillation, rank
and mix. Pure functions and classes here; pipeline stages in ``purgemix.mix.stages``."""
