"""Export: split a Keras model into an int8 backbone and a float32 head, verify, write a bundle."""
