import json

import pytest

from froster.prompts import (ALL_PROMPTS, BARE, BARE_INDEX, TEMPLATES, ClassText, PromptBank,
                             make_prompt, read_templates)


def test_there_are_28_templates_plus_the_bare_prompt():
    assert len(TEMPLATES) == 28 and len(set(TEMPLATES)) == 28
    assert len(ALL_PROMPTS) == 29 and ALL_PROMPTS[-1] == BARE
    assert all(t.endswith(".") and t.count("{}") == 1 for t in TEMPLATES)
    for prefix in ("a photo of", "a video of", "a example of", "a demonstration of"):
        assert f"{prefix} {{}}." in TEMPLATES
        assert f"{prefix} a person practicing {{}}." in TEMPLATES


@pytest.mark.parametrize("clean", [False, True])
def test_prompts_for_a_real_k400_class(shared_dir, clean):
    """A class with a description: the same prompts in both forms."""
    path = shared_dir / "benchmarks/froster_splits/label_rephrase/k400_rephrased_classes.json"
    text = json.loads(path.read_text())["0"]
    cls = ClassText.parse(text)
    assert cls.name == "Abseiling" and cls.text == text
    assert make_prompt("a video of a person {}.", cls, clean) == f"a video of a person Abseiling. {text}"
    assert make_prompt("a photo of {}.", cls, clean) == f"a photo of Abseiling. {text}"
    assert make_prompt(BARE, cls, clean) == text


def test_plain_names_get_the_reference_prompts_by_default():
    """The reference appends " " + the class text after every templated prompt, also for a
    plain name (temporalclip_video_model.text_prompt)."""
    cls = ClassText.parse("  playing   cricket ")
    assert cls.name == cls.text == "playing cricket" and not cls.has_description
    assert make_prompt("a demonstration of a person doing {}.", cls) == \
        "a demonstration of a person doing playing cricket. playing cricket"
    assert make_prompt("a photo of a person {}.", ClassText.parse("abseiling")) == \
        "a photo of a person abseiling. abseiling"
    assert make_prompt(BARE, cls) == "playing cricket"


def test_clean_prompts_for_plain_names():
    cls = ClassText.parse("playing cricket")
    assert make_prompt("a demonstration of a person doing {}.", cls, clean=True) == \
        "a demonstration of a person doing playing cricket."
    assert make_prompt(BARE, cls, clean=True) == "playing cricket"


@pytest.mark.parametrize("clean", [False, True])
def test_banks_of_real_class_files_in_both_forms(shared_dir, tiny_clip, clean):
    """Every prompt of the K400 plain-name and rephrased class files, built by the bank."""
    from froster.data import read_class_names

    _, tokenizer = tiny_clip
    labels = shared_dir / "benchmarks/froster_splits/label_rephrase"
    plain = PromptBank(read_class_names(labels / "k400_index2cls.json"), tokenizer, clean=clean)
    rephrased = PromptBank(read_class_names(labels / "k400_rephrased_classes.json"), tokenizer,
                           clean=clean)
    assert len(plain) == len(rephrased) == 400
    for t, template in enumerate(TEMPLATES):
        for c in (0, 123, 399):
            name = plain.classes[c].name
            expected = template.format(name) + ("" if clean else f" {name}")
            assert plain.prompts(t)[c] == expected
            text = rephrased.classes[c].text
            assert rephrased.prompts(t)[c] == template.format(text.split(":")[0]) + " " + text
    assert plain.prompts(BARE_INDEX)[5] == "archery"
    assert plain.key != PromptBank(plain.classes, tokenizer, clean=not clean).key


def test_empty_class_name_is_an_error():
    with pytest.raises(ValueError, match="empty"):
        ClassText.parse("   ")


def test_bank_tokenises_each_template_once(tiny_clip):
    _, tokenizer = tiny_clip
    calls = []

    def counting(texts):
        calls.append(len(texts))
        return tokenizer(texts)

    bank = PromptBank(["a", "b: the letter b"], counting)
    assert bank.stacked([0, 28]).shape == (2, 2, 77)
    bank.stacked([0, 28])
    assert calls == [2, 2]


def test_templates_file_is_read_and_bad_lines_are_named(tmp_path):
    path = tmp_path / "templates.txt"
    path.write_text("# demo templates\na video of a shape {}.\n\n{}\n")
    assert read_templates(path) == ("a video of a shape {}.", "{}")
    path.write_text("a video of {}.\nno placeholder here\n")
    with pytest.raises(ValueError, match=r"templates.txt:2: .*exactly one"):
        read_templates(path)
    path.write_text("# only a comment\n")
    with pytest.raises(ValueError, match="no templates"):
        read_templates(path)
