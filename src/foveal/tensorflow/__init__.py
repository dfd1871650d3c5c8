"""TensorFlow GraphDef front-end (in progress): reading GraphDef files without TensorFlow."""
