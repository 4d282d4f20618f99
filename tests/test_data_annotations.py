"""Video lists and class files: our users' formats, the published protocol files, errors."""

from pathlib import Path

import pytest
from _shared import SHARED, require

from froster.data.annotations import AnnotationError, read_annotations, read_class_names

BENCH = SHARED / "benchmarks"


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8", newline="")
    return path


# -- video lists -----------------------------------------------------------------------
def test_csv_list_with_spaces_in_paths_and_root(tmp_path):
    f = write(tmp_path, "train.csv", "a/b c.mp4,3\r\n\r\nd/e,f.avi,0\nlast one.mkv,12")
    items = read_annotations(f, data_root="/data")
    assert [(i.path, i.label, i.line) for i in items] == [
        ("/data/a/b c.mp4", 3, 1),
        ("/data/d/e,f.avi", 0, 3),
        ("/data/last one.mkv", 12, 4),
    ]


def test_space_separated_list_detected(tmp_path):
    f = write(tmp_path, "train_s1.csv", "v_Typing_g10_c04.avi 0\nwith space.avi\t7\n")
    items = read_annotations(f)
    assert [(i.path, i.label) for i in items] == [("v_Typing_g10_c04.avi", 0), ("with space.avi", 7)]


def test_header_line_is_skipped(tmp_path):
    items = read_annotations(write(tmp_path, "l.csv", "path,label\nx.mp4,1\n"))
    assert [(i.path, i.label, i.line) for i in items] == [("x.mp4", 1, 2)]


@pytest.mark.parametrize(
    "text, line, words",
    [
        ("a.mp4,1\nb.mp4,one\n", 2, "cannot parse"),
        ("a.mp4,1\nb.mp4\n", 2, "cannot parse"),
        ("a.mp4 1\nb.mp4,2\n", 2, "'path label'"),
        ("a.mp4,1\nb.mp4,-2\n", 2, "out of range"),
        ("a.mp4,1\n\nb.mp4,5\n", 3, "out of range (0..4)"),
    ],
)
def test_list_errors_name_file_and_line(tmp_path, text, line, words):
    f = write(tmp_path, "list.csv", text)
    with pytest.raises(AnnotationError) as e:
        read_annotations(f, num_classes=5)
    assert f"list.csv:{line}:" in str(e.value) and words in str(e.value)


def test_missing_and_empty_list(tmp_path):
    with pytest.raises(AnnotationError, match="nope.csv: file not found"):
        read_annotations(tmp_path / "nope.csv")
    with pytest.raises(AnnotationError, match="empty.csv: no videos"):
        read_annotations(write(tmp_path, "empty.csv", "\n\n"))


# -- class files -----------------------------------------------------------------------
def test_class_file_formats(tmp_path):
    j = write(tmp_path, "c.json", '{"1": "Run: a person runs", "0": "walk"}')
    assert read_class_names(j) == ["walk", "Run: a person runs"]  # texts untouched, index order
    c = write(tmp_path, "c.csv", 'id,name\r\n0,"Putting something, then more"\r\n1,jump\r\n')
    assert read_class_names(c) == ["Putting something, then more", "jump"]
    t = write(tmp_path, "c.txt", "brush hair\ncartwheel, fast\n\n")
    assert read_class_names(t) == ["brush hair", "cartwheel, fast"]
    lst = write(tmp_path, "defn.json", '[{"word": "clap", "defn": "strike"}, "wave"]')
    assert read_class_names(lst) == ["clap", "wave"]


@pytest.mark.parametrize(
    "name, text, words",
    [
        ("gap.json", '{"0": "a", "2": "c"}', "missing [1]"),
        ("dup.json", '{"0": "a", "0": "b"}', "duplicate class index '0'"),
        ("bad.json", '{"0": "a",\n "1": }', "bad.json:2: invalid JSON"),
        ("empty.json", "  \n", "no classes"),
        ("dup.csv", "0,a\n1,b\n1,c\n", "dup.csv:3: duplicate class index 1"),
        ("gap.csv", "0,a\n2,b\n", "missing [1]"),
        ("bad.csv", "0,a\nb\n", "bad.csv:2: expected 'index,name'"),
        ("hole.txt", "a\n\nb\n", "hole.txt:2: empty line"),
    ],
)
def test_class_file_errors(tmp_path, name, text, words):
    with pytest.raises(AnnotationError) as e:
        read_class_names(write(tmp_path, name, text))
    assert name in str(e.value) and words in str(e.value)


def test_class_file_that_does_not_match_the_list(tmp_path):
    classes = read_class_names(write(tmp_path, "classes.txt", "a\nb\n"))
    f = write(tmp_path, "val.csv", "x.mp4,0\ny.mp4,2\n")
    with pytest.raises(AnnotationError, match=r"val.csv:2: label 2 is out of range \(0..1\).*class file"):
        read_annotations(f, num_classes=len(classes))


# -- the published protocol files --------------------------------------------------------
CLASS_COUNTS = {  # from shared/benchmarks/README.md
    "froster_splits/zs_label_db/B2N_k400": (200, 200),
    "froster_splits/zs_label_db/B2N_hmdb": (26, 25),
    "froster_splits/zs_label_db/B2N_ucf101": (51, 50),
    "froster_splits/zs_label_db/B2N_ssv2": (87, 87),
}
LABEL_MAPS = {"kinetics_label_map_k400.txt": 400, "kinetics_label_map_k600.txt": 600,
              "kinetics_label_map_k700.txt": 700, "ucf101_label_map.txt": 101,
              "hmdb51_label_map.txt": 51, "sthv2_label_map.txt": 174}
VIFI = {"hmdb": ("hmdb_51", 26, 25), "k400": ("kinetics_400", 200, 200),
        "ssv2": ("ssv2_174", 87, 87), "ucf": ("ucf_101", 51, 50)}


@pytest.fixture
def bench():
    return require(BENCH, "shared benchmark files")


def test_froster_base_to_novel_splits(bench):
    for folder, (base, novel) in CLASS_COUNTS.items():
        d = bench / folder
        assert len(read_class_names(d / "train_idx2cls.csv")) == base
        assert len(read_class_names(d / "test_idx2cls.csv")) == novel
        assert len(read_class_names(d / "train_rephrased.json")) == base
        described = read_class_names(d / "test_rephrased.json")
        assert len(described) == novel and all(": " in t for t in described)
        lists = sorted(d.glob("train*.csv"))
        lists = [f for f in lists if "idx2cls" not in f.name]
        assert lists
        for f in [*lists, d / "val.csv"]:
            assert {i.label for i in read_annotations(f, num_classes=base)} == set(range(base)), f
        assert {i.label for i in read_annotations(d / "test.csv", num_classes=novel)} == set(range(novel))


def test_froster_cross_dataset_splits(bench):
    db = bench / "froster_splits/zs_label_db"
    ucf = read_class_names(db / "ucf101-index2cls.json")
    assert len(ucf) == 101
    assert len(read_annotations(db / "ucf101_full/test.csv", num_classes=101)) == 13320
    hmdb = read_class_names(bench / "froster_splits/label_rephrase/hmdb_rephrased_classes.json")
    assert len(hmdb) == 51 == len(read_class_names(db / "hmdb_full/classes_label_defn.json"))
    for k in (1, 2, 3):
        read_annotations(db / f"ucf101_split{k}/test.csv", num_classes=101)
        read_annotations(db / f"hmdb_split{k}/test.csv", num_classes=51)
        k600 = read_class_names(db / f"k600_split{k}/k600-openset-index2cls.json")
        assert len(k600) == 160
        assert len(read_class_names(bench / f"froster_splits/label_rephrase/k600_split{k}_rephrased_classes.json")) == 160
        read_annotations(db / f"k600_split{k}/test.csv", num_classes=160)
    assert len(read_class_names(bench / "froster_splits/label_rephrase/k400_rephrased_classes.json")) == 400
    assert len(read_class_names(bench / "froster_splits/label_rephrase/k400_index2cls.json")) == 400
    assert len(read_class_names(bench / "froster_splits/label_rephrase/ucf101_rephrased_classes.json")) == 101


def test_label_maps(bench):
    for name, count in LABEL_MAPS.items():
        assert len(read_class_names(bench / "label_maps" / name)) == count, name


def test_vificlip_splits(bench):
    labels = bench / "vificlip_splits/labels"
    for k in (1, 2, 3):
        assert len(read_class_names(labels / f"ZS_split{k}_K600.csv")) == 160
    assert len(read_class_names(labels / "kinetics_600_labels.csv")) == 600
    assert len(read_class_names(labels / "ssv2_labels.csv")) == 174
    for folder, (stem, base, novel) in VIFI.items():
        assert len(read_class_names(labels / f"{stem}_base_labels.csv")) == base
        assert len(read_class_names(labels / f"{stem}_novel_labels.csv")) == novel
        d = bench / f"vificlip_splits/datasets_splits/base2novel_splits/{folder}_splits"
        for f in sorted(d.glob("*.txt")):
            if f.name == "base_train.txt" and folder == "k400":
                # README: "k400 base_train missing" -- the file is empty
                with pytest.raises(AnnotationError, match="no videos"):
                    read_annotations(f)
                continue
            n = novel if f.name.startswith("novel") else base
            assert read_annotations(f, num_classes=n), f
    for stem in ("hmdb_51", "ucf_101", "kinetics_400"):
        read_class_names(labels / f"{stem}_labels.csv")


def test_every_benchmark_file_parses(bench):
    """Catch-all: nothing in the folder is left unread (one file is empty by design)."""
    parsed = 0
    for f in sorted(bench.rglob("*")):
        if not f.is_file() or f.name == "README.md":
            continue
        is_classes = f.suffix == ".json" or "idx2cls" in f.name or "label" in f.parent.name
        try:
            result = read_class_names(f) if is_classes else read_annotations(f)
        except AnnotationError as e:
            assert "k400_splits/base_train.txt" in str(e), e
            continue
        assert result
        parsed += 1
    assert parsed >= 100
