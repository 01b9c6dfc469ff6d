"""train/sft.py on a tiny random model: the loss mask covers assistant tokens only, a few steps lower the loss,
the run is deterministic for a seed, and a finished run is reused."""

import pytest

pytest.importorskip("trl")
pytest.importorskip("peft")

from _tiny_model import CHATML, CONVS, tiny  # noqa: E402

from purgemix.train.sft import PLAIN_TEMPLATE, SFTSettings, encode_conversation, finetune  # noqa: E402


@pytest.mark.parametrize("template", [CHATML, PLAIN_TEMPLATE])
def test_loss_mask_covers_the_assistant_turns_only(template):
    _, tok, _ = tiny(template)
    conv = CONVS[3] + [{"role": "user", "content": "what is 1 plus 1"}, {"role": "assistant", "content": "2"}]
    ids, labels = encode_conversation(tok, conv, 512)
    trained = [i for i, lab in zip(ids, labels) if lab != -100]
    assert all(lab in (-100, i) for i, lab in zip(ids, labels))
    text = tok.decode(trained)
    assert text.split().count("2") == 2 and "1 plus 1 is 2" in text  # both assistant turns
    for word in ("be", "brief", "what", "user", "system", "<|im_start|>"):  # nothing of the prompt side
        assert word not in text.split()
    assert tok.eos_token in text  # the end of each answer is learnt, so the model learns to stop


def test_few_steps_lower_the_loss_deterministically_and_a_finished_run_is_reused(tmp_path):
    settings = SFTSettings(lora=False, learning_rate=5e-3, max_steps=12, batch_size=4, save_steps=6, seed=3)
    a = finetune(CONVS, tmp_path / "a", settings, model_and_tokenizer=tiny())
    assert a["steps"] == 12 and len(a["losses"]) == 12
    assert sum(a["losses"][-3:]) / 3 < sum(a["losses"][:3]) / 3  # training lowers the loss
    b = finetune(CONVS, tmp_path / "b", settings, model_and_tokenizer=tiny())
    assert b["losses"] == pytest.approx(a["losses"], rel=1e-5)  # the same seed, the same run
    again = finetune(CONVS, tmp_path / "a", settings, model_and_tokenizer=None)  # reused: no base is loaded
    assert again == a
    from transformers import AutoModelForCausalLM

    assert AutoModelForCausalLM.from_pretrained(a["model"]).config.num_hidden_layers == 2


def test_lora_merges_into_a_plain_model_folder(tmp_path):
    settings = SFTSettings(lora=True, r=4, alpha=8, max_steps=2, batch_size=4, seed=0)
    info = finetune(CONVS, tmp_path / "lora", settings, model_and_tokenizer=tiny())
    from pathlib import Path

    files = {p.name for p in Path(info["model"]).iterdir()}
    assert "config.json" in files and not any("adapter" in f for f in files)
