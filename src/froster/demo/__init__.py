"""The offline demo: a procedural world of shapes doing actions (`world`), its
base-to-novel benchmark written in FROSTER's file layout (`benchmark`), and a tiny CLIP
"pretrained" on single frames and captions of that world (`pretrain`). See docs/demo.md."""
