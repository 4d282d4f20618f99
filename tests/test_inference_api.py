"""The Python API (Recognizer) and folder search, on a tiny random-weight checkpoint and
the real clips in ../shared/videos."""

import os
import time

import pytest
import torch

from froster.checkpoint import build_student, export_student
from froster.student_spec import StudentSpec
from froster.data import ViewSpec, VideoDataset, normalize, open_video
from froster.data.sampling import reference
from froster.data.annotations import VideoItem
from froster.data.decode import VideoDecodeError
from froster.inference.api import Recognizer
from froster.inference.videos import find_videos
from froster.inference.search import INDEX_FILE, VideoIndex, search_folder
from froster.prompts import ALL_PROMPTS, PromptBank

LABELS = ["arm wrestling", "yoga: a person holds a pose on a mat, stretching slowly",
          "cleaning pool", "making a cake", "playing cricket"]
CLIPS = ["yoga.mp4", "apply_eye_makeup.avi", "playing_cricket.gif"]


def make_checkpoint(folder, seed=0):
    torch.manual_seed(seed)
    spec = StudentSpec(model="froster-tiny", pretrained=None)
    student, _ = build_student(spec)
    export_student(student, spec, folder)
    return folder


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return make_checkpoint(tmp_path_factory.mktemp("ckpt"))


@pytest.fixture
def recognizer(checkpoint, tmp_path):
    return Recognizer.from_checkpoint(checkpoint, device="cpu", cache_dir=tmp_path / "cache",
                                      num_workers=0)


@pytest.fixture
def videos(shared_dir):
    return shared_dir / "videos"


def view_frames(path):
    """A file's 3 test views as the reference sampler decodes them, uint8 (3, 8, H, W, 3)."""
    with open_video(path) as video:
        frames = reference.test_views(video, ViewSpec()).frames
    return frames.view(3, 8, *frames.shape[1:])


def direct_logits(recognizer, path, labels):
    """The evaluation path written out: test dataset -> normalise -> per-view logits of
    VideoCLIP against the 29-prompt classifier -> summed over views."""
    model = recognizer.model
    bank = PromptBank(labels, recognizer.tokenizer, ALL_PROMPTS)
    dataset = VideoDataset([VideoItem(str(path), 0, 1)], mode="test", size=32)
    video = dataset[0]["video"]
    assert video.shape == (3, 8, 3, 32, 32)
    with torch.no_grad():
        classifier = model.encode_classes(bank.stacked(bank.all_templates()))
        x = normalize(video, recognizer.mean, recognizer.std)
        per_view = [model.logits(model.encode_frames(view[None]), classifier)[0] for view in x]
    return torch.stack(per_view).sum(dim=0)


@pytest.mark.parametrize("clip", CLIPS)
def test_logits_equal_the_evaluation_path(recognizer, videos, clip):
    expected = direct_logits(recognizer, videos / clip, LABELS)
    assert torch.allclose(recognizer.logits(videos / clip, LABELS), expected, atol=1e-5, rtol=1e-5)
    # the streaming path (what `froster predict` runs) gives the same numbers
    classifier = recognizer.label_embeddings(LABELS)
    [result] = list(recognizer.stream([videos / clip]))
    streamed = recognizer.view_logits(result.frames[None], classifier)[0]
    assert torch.allclose(streamed, expected, atol=1e-5, rtol=1e-5)
    # the views of a long clip differ (the GIF is shorter than one view: all start at 0)
    assert torch.allclose(result.frames[0], result.frames[1]) == clip.endswith(".gif")


def test_logits_equal_the_engine_evaluation(recognizer, videos, tmp_path):
    """Against the training engine's evaluation: its default test settings, its dataset,
    its 29-prompt classifier and its view-summed logits, on the same videos."""
    from froster.config import Config
    from froster.engine import evaluate

    cfg = Config()
    assert (cfg.num_frames, cfg.sampling_rate, cfg.target_fps, cfg.test_views, cfg.test_crops) == \
        (recognizer.view.num_frames, recognizer.view.sampling_rate, recognizer.view.target_fps,
         recognizer.view.num_views, recognizer.view.num_crops)
    clips = ["yoga.mp4", "apply_eye_makeup.avi"]
    list_file = tmp_path / "test.csv"
    list_file.write_text("".join(f"{videos / c},{i}\n" for i, c in enumerate(clips)))
    dataset = evaluate.eval_dataset(cfg, str(list_file), len(LABELS), recognizer.size)
    model = recognizer.model
    bank = PromptBank(LABELS, recognizer.tokenizer)
    classifier = evaluate.class_embeddings(model, bank, torch.device("cpu"))
    for i, clip in enumerate(clips):
        video = normalize(dataset[i]["video"], recognizer.mean, recognizer.std)[None]
        with torch.no_grad():
            theirs = evaluate.video_logits(model, video, classifier)[0]
        assert torch.allclose(recognizer.logits(videos / clip, LABELS), theirs, atol=1e-5, rtol=1e-5)


def test_classify_ranks_labels_with_probabilities_summing_to_one(recognizer, videos):
    ranked = recognizer.classify(videos / "arm_wrestling.mp4", LABELS)
    names = [name for name, _ in ranked]
    assert sorted(names) == sorted(["arm wrestling", "yoga", "cleaning pool", "making a cake",
                                    "playing cricket"])  # descriptions are not shown
    probs = [p for _, p in ranked]
    assert probs == sorted(probs, reverse=True)
    assert sum(probs) == pytest.approx(1.0, abs=1e-6)
    expected = direct_logits(recognizer, videos / "arm_wrestling.mp4", LABELS).softmax(-1)
    assert dict(ranked)["making a cake"] == pytest.approx(float(expected[3]), abs=1e-6)
    top2 = recognizer.classify(videos / "arm_wrestling.mp4", LABELS, top_k=2)
    assert top2 == ranked[:2]


def test_frame_tensor_input_matches_the_file(recognizer, videos):
    path = videos / "making_a_cake.mp4"  # portrait: resize + centre crop on the long side
    frames = view_frames(path)  # (3, 8, H, W, 3) uint8
    assert torch.allclose(recognizer.logits(frames, LABELS), recognizer.logits(path, LABELS), atol=1e-5)
    one_view = recognizer.logits(frames[1], LABELS)  # a single clip (T, H, W, 3) works too
    assert one_view.shape == (len(LABELS),)
    ranked = recognizer.classify(frames[1], LABELS)
    assert sum(p for _, p in ranked) == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(ValueError, match="uint8"):
        recognizer.classify(frames.float(), LABELS)


def test_text_cache_hit_skips_the_text_tower(checkpoint, tmp_path, monkeypatch):
    first = Recognizer.from_checkpoint(checkpoint, device="cpu", cache_dir=tmp_path)
    expected = first.label_embeddings(LABELS)
    assert first.text_tower_calls == 1 and first.cache.misses == 1
    assert list(tmp_path.rglob("*.safetensors")), "nothing written to the cache"

    second = Recognizer.from_checkpoint(checkpoint, device="cpu", cache_dir=tmp_path)

    def no_text_tower(*args, **kwargs):
        raise AssertionError("the text tower ran although the embeddings were cached")

    monkeypatch.setattr(second.model, "run_text", no_text_tower)
    assert torch.equal(second.label_embeddings(LABELS), expected)
    assert second.cache.hits == 1 and second.text_tower_calls == 0
    # other labels, order or templates are other entries
    for labels, templates in ((LABELS[::-1], None), (LABELS[:2], None),
                              (LABELS, ("a video of {}.",))):
        with pytest.raises(AssertionError, match="text tower ran"):
            second.label_embeddings(labels, templates)


def test_text_cache_is_keyed_by_the_model(checkpoint, tmp_path):
    other = make_checkpoint(tmp_path / "other", seed=1)
    a = Recognizer.from_checkpoint(checkpoint, device="cpu", cache_dir=tmp_path / "c")
    b = Recognizer.from_checkpoint(other, device="cpu", cache_dir=tmp_path / "c")
    assert a.identity != b.identity
    ea, eb = a.label_embeddings(LABELS), b.label_embeddings(LABELS)
    assert b.text_tower_calls == 1 and not torch.allclose(ea, eb)
    # random weights: identity from the weights themselves
    r1 = Recognizer.from_pretrained("froster-tiny", None, device="cpu", use_cache=False)
    r2 = Recognizer(r1.model, r1.tokenizer, device="cpu", use_cache=False)
    assert r1.identity == r2.identity and r1.identity.startswith("weights:")


def test_env_variable_sets_the_cache_dir(checkpoint, tmp_path, monkeypatch):
    monkeypatch.setenv("FROSTER_CACHE", str(tmp_path / "env-cache"))
    Recognizer.from_checkpoint(checkpoint, device="cpu").label_embeddings(["a", "b"])
    assert list((tmp_path / "env-cache").rglob("*.safetensors"))


def test_user_templates(recognizer):
    templates = ("a video of {}.", "{} in slow motion.")
    bank = PromptBank(["juggling", "surfing"], recognizer.tokenizer, templates)
    with torch.no_grad():
        expected = recognizer.model.encode_classes(bank.stacked(bank.all_templates()))
    got = recognizer.label_embeddings(["juggling", "surfing"], templates)
    assert torch.allclose(got, expected, atol=1e-6)


def test_embed_videos_and_texts(recognizer, videos):
    paths = [videos / c for c in CLIPS]
    embeddings = recognizer.embed_videos(paths)
    assert embeddings.shape == (3, recognizer.model.embed_dim)
    assert torch.allclose(embeddings.norm(dim=-1), torch.ones(3), atol=1e-5)
    # the video embedding is the normalised mean of the evaluation's frame embeddings
    dataset = VideoDataset([VideoItem(str(paths[0]), 0, 1)], mode="test", size=32)
    with torch.no_grad():
        frames = recognizer.model.encode_frames(normalize(dataset[0]["video"], recognizer.mean, recognizer.std))
    expected = torch.nn.functional.normalize(frames.mean(dim=(0, 1)), dim=-1)
    assert torch.allclose(embeddings[0], expected, atol=1e-5)
    texts = recognizer.embed_texts(["a person doing yoga", "a cricket match"])
    assert texts.shape == (2, recognizer.model.embed_dim)
    with torch.no_grad():
        direct = recognizer.model.encode_text(recognizer.tokenizer(["a person doing yoga"]))
    assert torch.allclose(texts[0], direct[0], atol=1e-5)
    # a frame tensor gives the same embedding as its file
    frames = view_frames(paths[0])
    mixed = recognizer.embed_videos([frames, paths[1]])
    assert torch.allclose(mixed, embeddings[:2], atol=1e-5)


def test_bad_video_raises_a_named_error(recognizer, tmp_path):
    bad = tmp_path / "not_a_video.mp4"
    bad.write_text("hello")
    with pytest.raises(VideoDecodeError, match="not_a_video.mp4"):
        recognizer.classify(bad, LABELS)
    with pytest.raises(VideoDecodeError, match="missing.mp4"):
        recognizer.embed_videos([tmp_path / "missing.mp4"])


def test_stream_reports_bad_files_and_goes_on_with_workers(recognizer, videos, tmp_path):
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "text.mp4").write_text("not a video")
    paths = [videos / "yoga.mp4", tmp_path / "empty.mp4", tmp_path / "missing.avi",
             videos / "playing_cricket.gif", tmp_path / "text.mp4"]
    results = list(recognizer.stream(paths, batch_size=2, num_workers=2))
    assert [r.index for r in results] == list(range(5))
    assert [r.ok for r in results] == [True, False, False, True, False]
    assert "empty file" in results[1].error and "file not found" in results[2].error
    assert "text.mp4" in results[4].error
    assert results[0].frames.shape == (3, 8, recognizer.model.embed_dim)


def test_top_level_api(checkpoint, videos, tmp_path, monkeypatch):
    import froster

    monkeypatch.setenv("FROSTER_CACHE", str(tmp_path))
    rec = froster.load_model(checkpoint, device="cpu", cache_dir=tmp_path)
    assert isinstance(rec, froster.Recognizer)
    ranked = froster.classify_video(videos / "yoga.mp4", LABELS, checkpoint=checkpoint, top_k=3)
    assert ranked == rec.classify(videos / "yoga.mp4", LABELS, top_k=3)
    with pytest.raises(ValueError, match="either checkpoint"):
        froster.load_model()


# -- search ------------------------------------------------------------------------------
@pytest.fixture
def folder(videos, tmp_path):
    """A temporary folder of links to the shared clips (one in a sub-folder, one a real copy
    that the tests may touch) and a bad file."""
    root = tmp_path / "videos"
    (root / "sub").mkdir(parents=True)
    for clip in sorted(videos.iterdir()):
        target = root / ("sub" if clip.name == "yoga.mp4" else "") / clip.name
        if clip.name == "apply_eye_makeup.avi":
            target.write_bytes(clip.read_bytes())
        else:
            target.symlink_to(clip)
    (root / "broken.mp4").write_text("not a video")
    return root


def test_search_ranks_every_video_once(recognizer, folder):
    ranking, report = search_folder(recognizer, folder, "a person doing yoga", num_workers=2)
    readable = sorted(p.relative_to(folder).as_posix() for p in find_videos(folder)
                      if p.name != "broken.mp4")
    assert len(readable) == 9 and "sub/yoga.mp4" in readable
    assert sorted(v for v, _ in ranking) == readable
    scores = [s for _, s in ranking]
    assert scores == sorted(scores, reverse=True)
    assert report.added == 9 and list(report.failed) == ["broken.mp4"]
    # the scores are cosine similarities of the API's embeddings
    text = recognizer.embed_texts(["a person doing yoga"])[0]
    video = recognizer.embed_videos([folder / ranking[0][0]])[0]
    assert scores[0] == pytest.approx(float(video @ text), abs=1e-5)
    assert (folder / INDEX_FILE).is_file()


def test_search_index_is_incremental(recognizer, folder, videos, monkeypatch):
    search_folder(recognizer, folder, "yoga")
    calls = []
    original = recognizer.encode
    monkeypatch.setattr(recognizer, "encode", lambda v: calls.append(len(v)) or original(v))

    ranking, report = search_folder(recognizer, folder, "cricket")
    assert calls == [] and report.added == 0 and report.reused == 9 and len(ranking) == 9

    (folder / "arm_wrestling.mp4").unlink()                       # removed
    (folder / "again.gif").symlink_to(videos / "playing_cricket.gif")  # added
    copy = folder / "apply_eye_makeup.avi"                        # changed (mtime)
    os.utime(copy, ns=(copy.stat().st_atime_ns, copy.stat().st_mtime_ns + 10**9))
    ranking, report = search_folder(recognizer, folder, "cricket")
    assert sum(calls) == 2 and report.added == 2 and report.removed == 2 and report.reused == 7
    names = sorted(v for v, _ in ranking)
    assert "arm_wrestling.mp4" not in names and "again.gif" in names and len(names) == 9
    # the same video under two names gets the same embedding
    index = VideoIndex(folder, recognizer)
    assert index.load()
    rows = {v: i for i, v in enumerate(index.videos)}
    assert torch.allclose(index.embeddings[rows["again.gif"]],
                          index.embeddings[rows["playing_cricket.gif"]], atol=1e-6)


def test_search_index_is_rebuilt_for_another_model(recognizer, folder, tmp_path):
    search_folder(recognizer, folder, "yoga")
    other = Recognizer.from_checkpoint(make_checkpoint(tmp_path / "other", seed=3), device="cpu",
                                       cache_dir=tmp_path / "cache", num_workers=0)
    _, report = search_folder(other, folder, "yoga")
    assert report.added == 9 and report.reused == 0
    recognizer.num_views = 1  # other views: other embeddings
    _, report = search_folder(recognizer, folder, "yoga")
    assert report.added == 9


def test_prompt_form_of_plain_labels(checkpoint, tmp_path):
    """Plain labels: the reference's prompts by default, clean ones on request; each form is
    its own cache entry; a label with a description is the same in both forms."""
    reference = Recognizer.from_checkpoint(checkpoint, device="cpu", cache_dir=tmp_path)
    clean = Recognizer.from_checkpoint(checkpoint, device="cpu", cache_dir=tmp_path,
                                       clean_prompts=True)
    assert not reference.clean_prompts and clean.clean_prompts
    for rec, form in ((reference, False), (clean, True)):
        bank = PromptBank(["juggling"], rec.tokenizer, clean=form)
        assert bank.prompts(0) == ["a photo of juggling." + ("" if form else " juggling")]
        with torch.no_grad():
            expected = rec.model.encode_classes(bank.stacked(bank.all_templates()))
        assert torch.allclose(rec.label_embeddings(["juggling"]), expected, atol=1e-6)
    assert clean.text_tower_calls == 1  # not served the reference form's cache entry
    assert not torch.allclose(reference.label_embeddings(["juggling"]),
                              clean.label_embeddings(["juggling"]), atol=1e-4)
    described = [LABELS[1]]
    assert torch.allclose(reference.label_embeddings(described), clean.label_embeddings(described),
                          atol=1e-6)


def test_checkpoint_trained_with_clean_prompts_predicts_with_them(tmp_path):
    torch.manual_seed(0)
    spec = StudentSpec(model="froster-tiny", pretrained=None)
    student, _ = build_student(spec)
    export_student(student, spec, tmp_path / "ckpt", {"config": {"clean_prompts": True}})
    assert Recognizer.from_checkpoint(tmp_path / "ckpt", device="cpu", use_cache=False).clean_prompts
    assert not Recognizer.from_checkpoint(tmp_path / "ckpt", device="cpu", use_cache=False,
                                          clean_prompts=False).clean_prompts


def test_precision_is_fp32_by_default_and_bf16_is_close(checkpoint, videos, tmp_path):
    fp32 = Recognizer.from_checkpoint(checkpoint, device="cpu", use_cache=False, num_workers=0)
    assert fp32.precision == "fp32" and fp32.dtype is None
    bf16 = Recognizer.from_checkpoint(checkpoint, device="cpu", use_cache=False, num_workers=0,
                                      precision="bf16")
    a = fp32.logits(videos / "yoga.mp4", LABELS)
    b = bf16.logits(videos / "yoga.mp4", LABELS)
    assert a.dtype == b.dtype == torch.float32
    assert not torch.equal(a, b) and torch.allclose(a, b, atol=0.5)
    with pytest.raises(ValueError, match="precision=fp16 is for CUDA"):
        Recognizer.from_checkpoint(checkpoint, device="cpu", precision="fp16")
