"""rfa_toolbox's hand-built demo graphs (VGG and ResNet), rebuilt from their published layouts."""
