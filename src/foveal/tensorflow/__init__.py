"""TensorFlow GraphDef front-end, read without TensorFlow: `load` (a GraphDef from a file, a
message, a tf.Graph, or a tf.function / SavedModel frozen by TensorFlow), `schema` (the message
classes), `fields` (every NodeDef field, validated), `convert` (the op table, by TF op name, and
the walk in topological order) and `frontend` (the contract's `convert`)."""
