"""A tiny random causal LM and a word-level tokenizer over the test words, for fine-tuning plumbing tests."""

CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
CONVS = [[{"role": "system", "content": "be brief"}, {"role": "user", "content": f"what is {a} plus {b}"},
          {"role": "assistant", "content": f"{a} plus {b} is {a + b}"}] for a in range(4) for b in range(2)]


def tiny(template=CHATML):
    """A word-level tokenizer over the test words and a 2-layer Llama with random weights."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    specials = ["<unk>", "<|im_start|>", "<|im_end|>", "<pad>"]
    words = sorted({w for c in CONVS for m in c for w in (m["role"] + " " + m["content"]).split()}
                   | {"###", "Instruction:", "Response:", "Instruction", "Response", ":", "#"})
    vocab = {w: i for i, w in enumerate(specials + words)}
    t = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    t.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok = PreTrainedTokenizerFast(tokenizer_object=t, unk_token="<unk>", pad_token="<pad>", eos_token="<|im_end|>",
                                  additional_special_tokens=["<|im_start|>"])
    tok.chat_template = template
    import torch

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=128,
                      pad_token_id=vocab["<pad>"], eos_token_id=vocab["<|im_end|>"])
    return LlamaForCausalLM(cfg), tok, None
