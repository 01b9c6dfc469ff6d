"""Runs the quick recipe with a slow, cached fake generator (for the kill-during-fusion test)."""

import json
import sys
import time

from purgemix.models import FakeLLM
from purgemix.models.cache import CachedLLM
from purgemix.recipe.build import build_pipeline
from purgemix.recipe.load import load_recipe
from purgemix.testing.mix_responder import MixResponder

if __name__ == "__main__":
    data, out, run_dir, delay = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    responder = MixResponder()

    def slow(conv, i):
        time.sleep(delay)
        return responder(conv, i)

    llm = CachedLLM(FakeLLM(slow, name="fake:mix"), chunk_size=1)  # commit every answer as it comes
    recipe = load_recipe("quick", ["models.embedder=fake", "models.scorer=null", "mix.quality=heuristic",
                                   "mix.budget=20", f"output.path={out}"])
    recipe["inputs"] = [data]
    pipe = build_pipeline(recipe, run_dir=run_dir, llm=llm)
    pipe.execute()
    print(json.dumps(llm.stats.as_dict()))
