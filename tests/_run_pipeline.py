"""Runs ingest -> normalise -> slow-upper -> drop-odd -> export (used by the resume tests)."""

import sys

from _stages import DropOddStage, SlowUpperStage

from purgemix.core.pipeline import InputSpec, OutputSpec, Pipeline
from purgemix.purge.normalise import NormaliseStage

if __name__ == "__main__":
    src, out, run_dir, workers, executor = sys.argv[1:6]
    Pipeline([InputSpec(src)], [NormaliseStage(), SlowUpperStage(), DropOddStage()], OutputSpec(out, "alpaca"),
             run_dir, workers=int(workers), executor=executor, shard_size=50).execute()
