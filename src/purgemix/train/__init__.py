"""Fine-tuning: ``sft.py`` (TRL ``SFTTrainer`` with PEFT LoRA), ``grpo.py`` (TRL ``GRPOTrainer`` on the mix
rewards), ``mixture.py`` (MIXTURE-style distiller training data), over ``base.py`` (``Trainer.train(data,
out) -> TrainResult``). Heavy dependencies stay behind the ``train`` extra. Row: above ``mix`` and
``select`` (it trains on their output and reuses the mix rewards), below ``recipe``.

Empty so far: this is where the evaluation harness's fine-tunes and the distiller's training land.
"""
