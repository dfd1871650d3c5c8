"""rfa_toolbox.encodings.tensorflow_keras on foveal's Keras front-end."""
