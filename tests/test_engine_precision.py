"""Which precision training and testing run in: the reference trains under fp16 autocast
and tests in fp32."""

import pytest
import torch

from froster.config import Config, load_config
from froster.engine.precision import autocast_dtype, eval_autocast_dtype

CPU, CUDA = torch.device("cpu"), torch.device("cuda")  # a device object needs no GPU


def test_testing_is_fp32_by_default_on_cpu_and_cuda():
    assert Config().eval_precision == "fp32"
    assert eval_autocast_dtype(Config().eval_precision, CPU) is None
    assert eval_autocast_dtype(Config().eval_precision, CUDA) is None
    assert autocast_dtype(Config().precision, CUDA) == torch.float16  # training: as the reference


def test_reduced_testing_precision_is_an_option():
    assert eval_autocast_dtype("bf16", CPU) == torch.bfloat16
    assert eval_autocast_dtype("bf16", CUDA) == torch.bfloat16
    assert eval_autocast_dtype("fp16", CUDA) == torch.float16
    with pytest.raises(ValueError, match="eval_precision=fp16 is for CUDA; on CPU use bf16 or fp32"):
        eval_autocast_dtype("fp16", CPU)
    with pytest.raises(ValueError, match="eval_precision='auto': expected one of fp32, bf16, fp16"):
        eval_autocast_dtype("auto", CUDA)
    with pytest.raises(ValueError, match="eval_precision"):
        load_config(overrides=["eval_precision=fp8"])
