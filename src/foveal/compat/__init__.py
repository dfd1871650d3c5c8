"""Drop-in interfaces of the libraries foveal grows from: change the import line, keep the code.

`foveal.compat.rfa_toolbox` answers rfa_toolbox's calls (hand-built graphs with its exact
semantics; captured PyTorch models with foveal's exact numbers). See docs/compat-rfa-toolbox.md.
"""
