"""The reference's `receptive_field.python.util.examples`: only `compute_rf` has a counterpart
(the others build TF-slim networks; foveal's benchmark and zoo cover that ground)."""
