"""rfa_toolbox's `encodings` package: the PyTorch and Keras entry points under their rfa_toolbox
module paths. They are thin: foveal's front-ends build the graphs (docs/compat-rfa-toolbox.md)."""
