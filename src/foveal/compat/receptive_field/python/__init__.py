"""The reference's package path `receptive_field.python`, so its imports work with the prefix
`receptive_field` changed to `foveal.compat.receptive_field` (docs/compat-receptive-field.md)."""
