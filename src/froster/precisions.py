"""The precision names the config and the command line accept (no torch here: `--help`
lists them cheaply; `engine.precision` turns them into dtypes)."""

TRAIN_PRECISIONS = ("auto", "fp32", "bf16", "fp16")  # auto: fp16 on CUDA (the reference), fp32 on CPU
EVAL_PRECISIONS = ("fp32", "bf16", "fp16")           # testing: fp32 as the reference
TEACHER_PRECISIONS = EVAL_PRECISIONS                 # the frozen teacher's towers
