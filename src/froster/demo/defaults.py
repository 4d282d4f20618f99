"""The demo's defaults that its command line shows, kept free of heavy imports so that
`froster demo --help` answers without loading numpy or torch."""

#: Share of videos in their action's usual colour (docs/demo.md); 0 gives the control world.
SIGNATURE_PROB = 0.6
#: Training epochs of the fine-tuning and FROSTER rows.
DEMO_EPOCHS = 8
