"""The demo's defaults that its command line shows, kept free of heavy imports so that
`froster demo --help` answers without loading numpy or torch."""

#: Share of videos in their action's usual colour (docs/demo.md); 0 gives the control world.
SIGNATURE_PROB = 0.6
#: Training epochs of the fine-tuning and FROSTER rows: the default (the paper's
#: base-to-novel recipe: 16 shots, 12 epochs), and --full's (docs/demo.md section 4).
DEMO_EPOCHS = 12
FULL_EPOCHS = 8
#: What `froster demo --help` says the default and --full take on 2 CPU cores (docs/demo.md).
DEFAULT_TIME = "about 4 minutes"
FULL_TIME = "about 18 minutes"
