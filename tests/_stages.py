"""Stages used only by tests (importable by spawned worker processes)."""

import os
import time

from purgemix.core.stage import MapStage, Result


class SlowUpperStage(MapStage):
    """Upper-cases responses, sleeping per shard so a test can kill the run half-way."""

    name = "slow-upper"

    def process(self, records):
        time.sleep(float(os.environ.get("SLOW_STAGE_SECONDS", "0")))
        for r in records:
            for m in r["messages"]:
                if m["role"] == "assistant":
                    m["content"] = m["content"].upper()
        return Result(records=records)


class DropOddStage(MapStage):
    """Drops every record whose response length is odd, with a reason."""

    name = "drop-odd"

    def process(self, records):
        res = Result()
        for r in records:
            if len(r["messages"][-1]["content"]) % 2:
                res.drop(r, self.name, "odd-length")
            else:
                res.records.append(r)
        return res


class MergePairsStage(MapStage):
    """Merges consecutive pairs into one created record (tests the ledger's merged/created path)."""

    name = "merge-pairs"

    def process(self, records):
        from purgemix.core.record import make_record

        res = Result()
        for a, b in zip(records[0::2], records[1::2]):
            new = make_record(
                [{"role": "user", "content": a["messages"][0]["content"] + " / " + b["messages"][0]["content"]},
                 {"role": "assistant", "content": "merged"}],
                source="merged", lineage={"derived_from": [a["id"], b["id"]]},
            )
            res.create(new, self.name, [a["id"], b["id"]])
            res.merge(a, self.name, into=new["id"], reason="pair")
            res.merge(b, self.name, into=new["id"], reason="pair")
        if len(records) % 2:
            res.records.append(records[-1])
        return res


def sleep_then_return(value, seconds):
    """A task for the executor tests."""
    time.sleep(seconds)
    return value
